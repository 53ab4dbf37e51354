public import CrispCore
import CrispOS
import Glibc

/// The network crisp installs when a host has none: a bridge with host-local IPAM on
/// 10.85.0.0/16 and portmap (the issue's `make run` default, as CRI-O's 10-crio-bridge).
public enum CNIDefaultConfig {
    public static let fileName = "10-crisp-bridge.conflist"

    public static let conflist = """
        {
          "cniVersion": "1.0.0",
          "name": "crisp",
          "plugins": [
            {
              "type": "bridge",
              "bridge": "crisp0",
              "isGateway": true,
              "ipMasq": true,
              "hairpinMode": true,
              "ipam": {
                "type": "host-local",
                "routes": [{ "dst": "0.0.0.0/0" }],
                "ranges": [[{ "subnet": "10.85.0.0/16" }]]
              }
            },
            { "type": "portmap", "capabilities": { "portMappings": true } }
          ]
        }

        """

    /// Writes `fileName` into `directory` only when the directory holds no config file
    /// (`.conflist`, `.conf`, `.json`) at all; never overwrites. Returns whether it wrote.
    @discardableResult
    public static func installIfMissing(in directory: String) throws(CrispError) -> Bool {
        if mkdirAll(directory) != 0 {
            throw CrispError(.failedPrecondition, "cannot create CNI config directory \(directory)",
                             cause: SystemCallError("mkdir", directory, errno: errno))
        }
        guard CNIConfigLoader.configFileNames(in: directory).isEmpty else { return false }
        do { try writeFileAtomically(directory + "/" + fileName, conflist) } catch {
            throw CrispError(.internal, "cannot write \(directory)/\(fileName)", cause: error as? SystemCallError)
        }
        return true
    }
}
