public import CrispCore

/// Resolves the user a container runs as, from the CRI security context and the image's User,
/// against the image's own /etc/passwd and /etc/group text (never the host's).
public enum UserResolution {
    public struct Resolved: Sendable, Equatable {
        public var uid: UInt32
        public var gid: UInt32
        public var additionalGids: [UInt32]
    }

    struct PasswdEntry { var name: String; var uid: UInt32; var gid: UInt32 }
    struct GroupEntry { var name: String; var gid: UInt32; var members: [String] }

    public static func resolve(_ input: ContainerSpecInput) throws(CrispError) -> Resolved {
        let users = parsePasswd(input.passwd ?? "")
        let groups = parseGroup(input.group ?? "")
        let sec = input.security
        var uid: UInt32
        var gid: UInt32?
        var username: String?

        // A group alone would silently pair with the image's user; the kubelet and CRI-O refuse it.
        if sec.runAsGroup != nil && sec.runAsUser == nil && sec.runAsUsername.isEmpty {
            throw .invalidArgument("run_as_group is set without run_as_user or run_as_username")
        }
        if let u = sec.runAsUser {
            guard u >= 0, u <= Int64(UInt32.max) else { throw .invalidArgument("run_as_user \(u) is out of range") }
            uid = UInt32(u)
        } else if !sec.runAsUsername.isEmpty {
            guard let e = users.first(where: { $0.name == sec.runAsUsername }) else {
                throw .invalidArgument("run_as_username \"\(sec.runAsUsername)\" is not in the image's /etc/passwd")
            }
            uid = e.uid
            gid = e.gid
            username = e.name
        } else {
            // The image's User: "user", "uid", "user:group" or "uid:gid".
            let parts = input.image.user.split(separator: ":", maxSplits: 1).map(String.init)
            let userPart = parts.first ?? ""
            if userPart.isEmpty {
                uid = 0
            } else if let n = UInt32(userPart) {
                uid = n
            } else if let e = users.first(where: { $0.name == userPart }) {
                uid = e.uid
                gid = e.gid
                username = e.name
            } else {
                throw .invalidArgument("image user \"\(userPart)\" is not in the image's /etc/passwd")
            }
            if parts.count == 2 {
                if let n = UInt32(parts[1]) { gid = n } else if let g = groups.first(where: { $0.name == parts[1] }) {
                    gid = g.gid
                } else {
                    throw .invalidArgument("image group \"\(parts[1])\" is not in the image's /etc/group")
                }
            }
        }
        if let e = users.first(where: { $0.uid == uid }) {
            if gid == nil { gid = e.gid }
            if username == nil { username = e.name }
        }
        if let g = sec.runAsGroup {
            guard g >= 0, g <= Int64(UInt32.max) else { throw .invalidArgument("run_as_group \(g) is out of range") }
            gid = UInt32(g)
        }
        // The primary group comes first among the supplementary ones, as containerd and CRI-O
        // set them (and as the kubelet expects them back in ContainerStatus.user).
        var additional: [UInt32] = [gid ?? 0]
        if let username, !sec.strictSupplementalGroups {
            additional += groups.filter { $0.members.contains(username) }.map(\.gid)
        }
        for g in sec.supplementalGroups where g >= 0 && g <= Int64(UInt32.max) {
            additional.append(UInt32(g))
        }
        var seen = Set<UInt32>()
        additional = additional.filter { seen.insert($0).inserted }
        return Resolved(uid: uid, gid: gid ?? 0, additionalGids: additional)
    }

    static func parsePasswd(_ text: String) -> [PasswdEntry] {
        text.split(separator: "\n").compactMap { line in
            let f = line.split(separator: ":", omittingEmptySubsequences: false)
            guard f.count >= 4, !line.hasPrefix("#"), let uid = UInt32(f[2]), let gid = UInt32(f[3]) else { return nil }
            return PasswdEntry(name: String(f[0]), uid: uid, gid: gid)
        }
    }

    static func parseGroup(_ text: String) -> [GroupEntry] {
        text.split(separator: "\n").compactMap { line in
            let f = line.split(separator: ":", omittingEmptySubsequences: false)
            guard f.count >= 3, !line.hasPrefix("#"), let gid = UInt32(f[2]) else { return nil }
            let members = f.count > 3 ? f[3].split(separator: ",").map(String.init) : []
            return GroupEntry(name: String(f[0]), gid: gid, members: members)
        }
    }
}
