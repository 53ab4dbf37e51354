/// CRI timeouts are seconds in an Int64. Swift's sleeping clocks turn a deadline into Int64
/// seconds and trap past that, so a request carrying Int64.max (the fuzzer sent one to ExecSync)
/// killed crispd with "Not enough bits to represent the passed value". Every CRI timeout becomes
/// a Duration here, capped at about 68 years, which is as good as no limit.
enum CRITimeout {
    static let maximumSeconds = Int64(Int32.max)

    /// `seconds` as a Duration; negative counts as 0, more than `maximumSeconds` as that.
    static func duration(seconds: Int64) -> Duration {
        .seconds(min(max(seconds, 0), maximumSeconds))
    }
}
