extension Duration {
    /// The duration in seconds, as a Double (for SQL intervals and arithmetic).
    public var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
