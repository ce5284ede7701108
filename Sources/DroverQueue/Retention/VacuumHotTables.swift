import DroverPersistence

extension JobStore {
    /// Vacuums the tables claims walk once they hold `minimumDeadRows` dead rows (PostgreSQL; SQLite
    /// has nothing to vacuum). Returns the tables vacuumed.
    @discardableResult
    public func vacuumHotTables(minimumDeadRows: Int, on database: Driver.Database) throws -> [VacuumedTable] {
        try driver.vacuumHotTables(minimumDeadRows: minimumDeadRows, in: self, on: database)
    }
}

extension PostgresDriver {
    /// The tables every claim walks in index order: each claimed job leaves a dead row (and dead
    /// index entries at the very start of the claim indexes) until a vacuum removes it. Between
    /// autovacuum's visits (`autovacuum_naptime`, a minute by default) a busy system piles up
    /// hundreds of thousands of them, and every claim steps over them: measured, a burn-down of
    /// 1,000,000 jobs fell from 20,000 to 10,000 jobs/s as they grew.
    public static let hotTables = ["ready_executions", "claimed_executions"]

    /// Vacuums the ``hotTables`` that have at least `minimumDeadRows` dead rows (PostgreSQL's
    /// statistics, about a second behind) and that this role may vacuum (it owns them, as the
    /// role that ran the migrations does). `SKIP_LOCKED`: a table another vacuum is working on is
    /// left to it. Returns the tables vacuumed, with their dead rows before and after: a vacuum
    /// cannot remove the rows an older transaction may still see (one left open somewhere), and
    /// then leaves most of them.
    public func vacuumHotTables(minimumDeadRows: Int, in store: JobStore<Self>, on connection: Connection) throws -> [VacuumedTable] {
        let schema = store.schema
        let rows = try connection.query("""
            SELECT s.relname::text AS name, s.n_dead_tup AS dead
            FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
            WHERE s.schemaname = \(schema.parts[0]) AND s.relname = ANY(\(Self.hotTables))
              AND s.n_dead_tup >= \(minimumDeadRows)
              AND pg_has_role(c.relowner, 'USAGE')
            ORDER BY s.relname
            """)
        var vacuumed: [VacuumedTable] = []
        for row in rows {
            let name = try row.decode("name", as: String.self)
            try connection.execute("VACUUM (SKIP_LOCKED) \(store.table(name))")
            let left = try connection.query("""
                SELECT n_dead_tup AS dead FROM pg_stat_user_tables WHERE schemaname = \(schema.parts[0]) AND relname = \(name)
                """).first?.decode("dead", as: Int.self) ?? 0
            vacuumed.append(VacuumedTable(table: name, deadRows: try row.decode("dead", as: Int.self), deadRowsLeft: left))
        }
        return vacuumed
    }
}

/// A table ``JobStore/vacuumHotTables(minimumDeadRows:on:)`` vacuumed.
public struct VacuumedTable: Sendable, Equatable {
    public let table: String
    /// Dead rows before the vacuum, and after it (PostgreSQL's statistics).
    public let deadRows: Int
    public let deadRowsLeft: Int

    public init(table: String, deadRows: Int, deadRowsLeft: Int) {
        self.table = table
        self.deadRows = deadRows
        self.deadRowsLeft = deadRowsLeft
    }

    /// Most of its dead rows are still there: a transaction older than them is still open.
    public var heldBack: Bool { deadRowsLeft * 2 >= deadRows }
}
