// SPDX-License-Identifier: MPL-2.0
// json_writer: builds one JSON document (RFC 8259) in a string, with commas and escaping done
// once, here, so no renderer writes JSON syntax by hand.
#pragma once

#include <concepts>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace portunusd {

/// Appends JSON tokens in document order. The caller pairs begin/end and gives a key() before
/// every value inside an object; the writer places commas and colons. Output is compact (one
/// line) and always valid UTF-8: strings are escaped as json_escape() does.
class json_writer {
public:
    void begin_object() { open('{'); }
    void end_object() { close('}'); }
    void begin_array() { open('['); }
    void end_array() { close(']'); }
    void key(std::string_view name);
    /// key(name), then value(v).
    template <class T>
    void member(std::string_view name, const T& v)
    {
        key(name);
        value(v);
    }

    void value(std::string_view text);
    void value(const char* text) { value(std::string_view{text}); }
    void value(bool b);
    template <std::integral T>
    void value(T n)
    {
        if constexpr (std::is_signed_v<T>)
            signed_value(n);
        else
            unsigned_value(n);
    }
    /// An integral value without a fraction ("5"), others in the shortest form that reads back
    /// exactly; NaN and infinities, which JSON cannot express, as null.
    void value(double d);
    void null();

    /// The document so far; valid JSON once every begin has its end.
    [[nodiscard]] const std::string& str() const noexcept { return out_; }

private:
    void open(char bracket);
    void close(char bracket);
    void before_value();
    void signed_value(std::int64_t n);
    void unsigned_value(std::uint64_t n);

    std::string out_;
    // One entry per open object or array: whether it has a member or element yet.
    std::vector<bool> has_items_;
    bool after_key_ = false;
};

/// `text` as a JSON string literal with its quotes. Quotes, backslashes, control bytes, DEL and
/// U+2028/U+2029 are escaped; valid UTF-8 passes through; each byte of an invalid or overlong
/// sequence, or of an encoded surrogate, becomes U+FFFD.
std::string json_escape(std::string_view text);

} // namespace portunusd
