import DroverQueue
import DroverRuntime
import Foundation

/// How a dashboard serves: where, with which password, read-only or not, on which database.
public struct WebSettings: Sendable {
    public var listen: ListenAddress
    public var readOnly: Bool
    /// The password (HTTP Basic, any user name) and bearer token; nil: none. Never logged or shown.
    var password: String?
    /// The database: a URL (never shown unmasked) and how to open it.
    public var databaseURL: String
    public var storeOptions: StoreOptions
    public var metrics: MetricsRenderer = Metrics.renderer
    /// How long an address in use is tried again at start: a web child that a reload replaced
    /// may hold it for a moment while it stops. `drover web` does not wait.
    public var addressInUseWait: Duration = .seconds(10)
    public var log: Log

    public init(listen: ListenAddress, readOnly: Bool, password: String?, databaseURL: String, storeOptions: StoreOptions, log: Log) {
        self.listen = listen
        self.readOnly = readOnly
        self.password = password
        self.databaseURL = databaseURL
        self.storeOptions = storeOptions
        self.log = log
    }

    public var requiresPassword: Bool { password != nil }

    /// Whether requests must name this host in `Host:`: on a loopback address without a password,
    /// so that a web page whose own name resolves to 127.0.0.1 (DNS rebinding) cannot read the
    /// dashboard from a browser on this host.
    var checksHost: Bool {
        guard password == nil, case .tcp = listen else { return false }
        return true
    }
}
