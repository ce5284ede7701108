/// One numbered schema change, shipped inside the binary.
///
/// The SQL runs with `search_path` set to the target schema only, so it names its objects without a
/// schema and lands in whichever schema is configured. Functions that must find those objects later
/// declare `SET search_path FROM CURRENT`.
public struct Migration: Sendable {
    public let version: Int
    public let name: String
    public let sql: String

    public init(version: Int, name: String, sql: String) {
        self.version = version
        self.name = name
        self.sql = sql
    }
}
