// lfsync for a plain <script> tag: defines window.lfsync. A classic script
// (no exports) that imports index.js from its own directory, so both builds
// share one implementation and one runtime per page.
//
//   <script src="/lfsync/lfsync.global.js"></script>
//   <script>
//     lfsync.createClient({ url: "ws://localhost:8080/sync" }).then((client) => ...);
//   </script>
//
// window.lfsync holds version and createClient at once; LfsyncError (and
// the rest of index.js's exports) appear when lfsync.ready resolves, which
// createClient awaits by itself.
(function () {
  "use strict";
  var script = document.currentScript;
  var base = script && script.src ? script.src : document.baseURI;
  var lfsync = {
    version: "0.1.0",
    createClient: function (options) {
      return lfsync.ready.then(function (m) {
        return m.createClient(options);
      });
    },
  };
  lfsync.ready = import(new URL("./index.js", base).href).then(function (m) {
    lfsync.LfsyncError = m.LfsyncError;
    lfsync.Client = m.Client;
    lfsync.Repository = m.Repository;
    return m;
  });
  // Keep a failed load from surfacing as an unhandled rejection until
  // someone asks: createClient and lfsync.ready still reject.
  lfsync.ready.catch(function () {});
  window.lfsync = lfsync;
})();
