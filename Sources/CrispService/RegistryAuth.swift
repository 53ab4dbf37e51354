/// Registry credentials as a CRI `AuthConfig` carries them, for a pull. The image manager turns
/// them into the puller's credentials (decoding `auth`, refusing a malformed one).
public struct RegistryAuth: Sendable, Equatable {
    public var username = ""
    public var password = ""
    /// base64 of `user:password`, used when username and password are empty.
    public var auth = ""
    public var identityToken = ""
    public var registryToken = ""

    public init(username: String = "", password: String = "", auth: String = "", identityToken: String = "", registryToken: String = "") {
        self.username = username
        self.password = password
        self.auth = auth
        self.identityToken = identityToken
        self.registryToken = registryToken
    }

    public var isEmpty: Bool {
        username.isEmpty && password.isEmpty && auth.isEmpty && identityToken.isEmpty && registryToken.isEmpty
    }
}

/// A runtime handler as Status advertises it.
public struct AdvertisedHandler: Sendable, Equatable {
    /// Empty for the default handler's unnamed entry.
    public var name: String
    public var recursiveReadOnlyMounts: Bool
    public var userNamespaces: Bool
}
