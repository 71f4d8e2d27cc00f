// Package protocol holds the wire format of the local_first_websocket protocol
// as its code speaks it, plus lfsync's ignorable extensions.
//
// Both sides use it: the browser/native engine in core and the server in
// server. It is pure Go with no platform dependencies. Decoding accepts the
// README's spellings (eventId, operation, createdAt, data.id) as aliases;
// encoding always writes the coded form (_event_id, _operation, ...).
package protocol
