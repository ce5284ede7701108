import DroverPersistence

extension JobStore {
    /// The tables every claim walks in index order: each claimed job leaves a dead row (and dead
    /// index entries at the very start of the claim indexes) until a vacuum removes it. Between
    /// autovacuum's visits (`autovacuum_naptime`, a minute by default) a busy system piles up
    /// hundreds of thousands of them, and every claim steps over them: measured, a burn-down of
    /// 1,000,000 jobs fell from 20,000 to 10,000 jobs/s as they grew.
    public static let hotTables = ["ready_executions", "claimed_executions"]

    /// Vacuums the ``hotTables`` that have at least `minimumDeadRows` dead rows (PostgreSQL's
    /// statistics, about a second behind) and that this role may vacuum (it owns them, as the
    /// role that ran the migrations does). `SKIP_LOCKED`: a table another vacuum is working on is
    /// left to it. Returns the tables vacuumed, with their dead rows.
    @discardableResult
    public func vacuumHotTables(minimumDeadRows: Int, on connection: Connection) throws(DatabaseError) -> [(table: String, deadRows: Int)] {
        let rows = try connection.query("""
            SELECT s.relname::text AS name, s.n_dead_tup AS dead
            FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
            WHERE s.schemaname = \(schema.parts[0]) AND s.relname = ANY(\(Self.hotTables))
              AND s.n_dead_tup >= \(minimumDeadRows)
              AND pg_has_role(c.relowner, 'USAGE')
            ORDER BY s.relname
            """)
        var vacuumed: [(table: String, deadRows: Int)] = []
        for row in rows {
            let name = try row.decode("name", as: String.self)
            try connection.execute("VACUUM (SKIP_LOCKED) \(table(name))")
            vacuumed.append((name, try row.decode("dead", as: Int.self)))
        }
        return vacuumed
    }
}
