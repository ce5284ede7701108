import Foundation

/// An element type of a one-dimensional PostgreSQL array parameter or column.
public protocol DatabaseArrayElement: DatabaseEncodable {
    /// The array type whose elements have this type (`bigint[]` for `Int`).
    static var databaseArrayType: DatabaseType { get }
}

extension Int: DatabaseArrayElement { public static var databaseArrayType: DatabaseType { .int8Array } }
extension Int64: DatabaseArrayElement { public static var databaseArrayType: DatabaseType { .int8Array } }
extension Int32: DatabaseArrayElement { public static var databaseArrayType: DatabaseType { .int4Array } }
extension Int16: DatabaseArrayElement { public static var databaseArrayType: DatabaseType { .int2Array } }
extension String: DatabaseArrayElement { public static var databaseArrayType: DatabaseType { .textArray } }
extension Bool: DatabaseArrayElement { public static var databaseArrayType: DatabaseType { .boolArray } }
extension Double: DatabaseArrayElement { public static var databaseArrayType: DatabaseType { .float8Array } }
extension Date: DatabaseArrayElement { public static var databaseArrayType: DatabaseType { .timestamptzArray } }
extension UUID: DatabaseArrayElement { public static var databaseArrayType: DatabaseType { .uuidArray } }
extension JSON: DatabaseArrayElement { public static var databaseArrayType: DatabaseType { .jsonbArray } }

/// `[1, 2, 3]` binds as `'{"1","2","3"}'::bigint[]`, for `= ANY(\(ids))` and `unnest(\(ids))`.
extension Array: DatabaseEncodable where Element: DatabaseArrayElement {
    public static var databaseType: DatabaseType { Element.databaseArrayType }
    public var databaseText: String? {
        var text = "{"
        for (i, element) in enumerated() {
            if i > 0 { text += "," }
            guard let elementText = element.databaseText else {
                text += "NULL"
                continue
            }
            text += "\""
            for ch in elementText.unicodeScalars {
                if ch == "\"" || ch == "\\" { text += "\\" }
                text.unicodeScalars.append(ch)
            }
            text += "\""
        }
        return text + "}"
    }
}

private let elementTypes: [DatabaseType: DatabaseType] = [
    .int8Array: .int8, .int4Array: .int4, .int2Array: .int2, .textArray: .text, .varcharArray: .varchar,
    .boolArray: .bool, .float8Array: .float8, .timestamptzArray: .timestamptz, .uuidArray: .uuid,
    .jsonbArray: .jsonb,
]

/// One-dimensional arrays of non-NULL elements.
extension Array: DatabaseDecodable where Element: DatabaseDecodable {
    public static func decode(from value: DatabaseValue) throws(DatabaseDecodingFailure) -> [Element] {
        guard let text = value.text else { throw .unexpectedNull }
        guard let elementType = elementTypes[value.type] else { throw .typeMismatch }
        guard let items = ArrayLiteral.parse(text) else {
            throw .malformed("\(text.prefix(80)) is not a one-dimensional array")
        }
        var result: [Element] = []
        result.reserveCapacity(items.count)
        for item in items {
            result.append(try Element.decode(from: DatabaseValue(type: elementType, text: item)))
        }
        return result
    }
}

/// PostgreSQL's text form of a one-dimensional array: `{a,"b c",NULL,"d\"e"}`.
enum ArrayLiteral {
    static func parse(_ text: String) -> [String?]? {
        var scalars = Array(text.unicodeScalars)[...]
        guard scalars.first == "{", scalars.last == "}" else { return nil }
        scalars = scalars.dropFirst().dropLast()
        if scalars.isEmpty { return [] }
        var items: [String?] = []
        var i = scalars.startIndex
        while true {
            var item = String.UnicodeScalarView()
            var quoted = false
            if i < scalars.endIndex, scalars[i] == "\"" {
                quoted = true
                i += 1
                while true {
                    guard i < scalars.endIndex else { return nil }
                    let c = scalars[i]
                    if c == "\"" { i += 1; break }
                    if c == "\\" {
                        i += 1
                        guard i < scalars.endIndex else { return nil }
                    }
                    item.append(scalars[i])
                    i += 1
                }
            } else {
                while i < scalars.endIndex, scalars[i] != "," {
                    if scalars[i] == "{" || scalars[i] == "\"" { return nil }  // nested or malformed
                    item.append(scalars[i])
                    i += 1
                }
            }
            let string = String(item)
            items.append(!quoted && string == "NULL" ? nil : string)
            if i == scalars.endIndex { return items }
            guard scalars[i] == "," else { return nil }
            i += 1
        }
    }
}
