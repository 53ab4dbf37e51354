/// The crisp package version, reported by `Version` and `crispd --version`.
public enum CrispVersion {
    public static let string = "0.1.0"
}
