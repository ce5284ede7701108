/// Bytes a program printed, made safe for every sink once: a database text column (PostgreSQL
/// refuses NUL, SQLSTATE 22P05), JSON, and a log line.
///
/// Valid UTF-8 is kept as it is; NUL and every byte that is not part of valid UTF-8 become a
/// visible `\xNN`, so nothing is silently replaced and nothing can end a C string early.
///
/// ```swift
/// SafeText.escape([0x61, 0x00, 0x62, 0xFF])   // "a\x00b\xFF"
/// ```
public enum SafeText {
    public static func escape(_ bytes: some Collection<UInt8>) -> String {
        var out = String()
        out.reserveCapacity(bytes.count)
        var decoder = UTF8()
        // Decoded scalar by scalar from an indexable copy: an invalid sequence is escaped one byte
        // at a time, and decoding starts again at the next byte.
        let all = Array(bytes)
        var index = 0
        while index < all.count {
            var one = all[index...].makeIterator()
            switch decoder.decode(&one) {
            case .scalarValue(let scalar):
                let width = UTF8.width(scalar)
                if scalar == "\0" { out += "\\x00" } else { out.unicodeScalars.append(scalar) }
                index += width
            case .error:
                out += "\\x" + hex(all[index])
                index += 1
                decoder = UTF8()
            case .emptyInput:
                index = all.count
            }
        }
        return out
    }

    /// `text` with NUL escaped (a Swift string is valid Unicode already).
    public static func escape(_ text: String) -> String {
        text.contains("\0") ? text.replacingOccurrences(of: "\0", with: "\\x00") : text
    }

    private static func hex(_ byte: UInt8) -> String {
        let digits = Array("0123456789ABCDEF")
        return String([digits[Int(byte >> 4)], digits[Int(byte & 0xF)]])
    }
}
