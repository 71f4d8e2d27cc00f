package serverbench

// postgres measures ingest and fan-out on PostgreSQL.
func (r *runner) postgres() {
	r.o.Logf("serverbench: PostgreSQL figures skipped: server/postgres is not in this build yet")
}
