/// The zlib preset dictionary of SPDY/3 header compression (draft-mbelshe-httpbis-spdy-00,
/// section 2.6.10.1). Both directions of every SPDY/3 connection prime zlib with it, so a single
/// byte off makes the peer's inflate fail with a dictionary-id mismatch (its Adler-32 is 0xE3C6A7C2).
///
/// The spec prints it as a flat byte table; it is really 65 length-prefixed words followed by a run
/// of raw text, which is how it is spelled out here.
let spdy3HeaderDictionary: [UInt8] = {
    let words = [
        "options", "head", "post", "put", "delete", "trace",
        "accept", "accept-charset", "accept-encoding", "accept-language", "accept-ranges",
        "age", "allow", "authorization", "cache-control", "connection",
        "content-base", "content-encoding", "content-language", "content-length",
        "content-location", "content-md5", "content-range", "content-type",
        "date", "etag", "expect", "expires", "from", "host",
        "if-match", "if-modified-since", "if-none-match", "if-range", "if-unmodified-since",
        "last-modified", "location", "max-forwards", "pragma",
        "proxy-authenticate", "proxy-authorization", "range", "referer", "retry-after",
        "server", "te", "trailer", "transfer-encoding", "upgrade", "user-agent",
        "vary", "via", "warning", "www-authenticate",
        "method", "get", "status", "200 OK", "version", "HTTP/1.1", "url",
        "public", "set-cookie", "keep-alive", "origin",
    ]
    // Unprefixed, concatenated without separators (the spaces and commas below are part of it).
    let tail = [
        "100101201202205206300302303304305306307",
        "402405406407408409410411412413414415416417",
        "502504505",
        "203 Non-Authoritative Information",
        "204 No Content",
        "301 Moved Permanently",
        "400 Bad Request",
        "401 Unauthorized",
        "403 Forbidden",
        "404 Not Found",
        "500 Internal Server Error",
        "501 Not Implemented",
        "503 Service Unavailable",
        "Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 ",
        "Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT",
        "chunked,text/html,image/png,image/jpg,image/gif,",
        "application/xml,application/xhtml+xml,text/plain,text/javascript,",
        "publicprivatemax-age=gzip,deflate,sdch",
        "charset=utf-8charset=iso-8859-1,utf-,*,enq=0.",
    ]
    var bytes: [UInt8] = []
    bytes.reserveCapacity(1423)
    for word in words {
        let count = UInt32(word.utf8.count)
        bytes += [UInt8(count >> 24), UInt8((count >> 16) & 0xFF), UInt8((count >> 8) & 0xFF), UInt8(count & 0xFF)]
        bytes += Array(word.utf8)
    }
    for piece in tail { bytes += Array(piece.utf8) }
    return bytes
}()
