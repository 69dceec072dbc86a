// SPDX-License-Identifier: MPL-2.0
// A pre-scan that keeps the two inputs toml++ 3.3 mishandles from ever reaching it.
//
// toml++ 3.3 asserts, instead of checking, that (1) the character after a table header's "[" or
// "[[" can start a key, and (2) the next element of an array is not "}" or a Unicode line
// separator (U+0085, U+2028, U+2029). Where assertions are compiled in that is abort(); in clang
// builds without them it is __builtin_assume(false), undefined behaviour. Only the library's gcc
// release builds happen to answer with a parse error. Everything in front of the statement that
// holds such a spot parses normally, so the one way to be safe in every build is to find it
// first. On valid TOML this scanner must never report anything: it lexes strings and comments
// exactly, and treats "[" as a header only where a statement begins.
#include "portunusd/config/config_values.hpp"

#include <vector>

namespace portunusd::config_detail {
namespace {

bool can_start_key(char c) noexcept
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c == '"' || c == '\'';
}

bool is_utf8_continuation(char c) noexcept
{
    return (static_cast<unsigned char>(c) & 0xc0) == 0x80;
}

// U+0085, U+2028 and U+2029 in UTF-8: toml++ counts them as whitespace but not as line breaks.
bool is_unicode_line_separator(std::string_view rest) noexcept
{
    return rest.substr(0, 2) == "\xc2\x85" || rest.substr(0, 3) == "\xe2\x80\xa8" ||
           rest.substr(0, 3) == "\xe2\x80\xa9";
}

// The character at the start of `rest` as a message shows it: ASCII as itself (control bytes
// escaped), anything else as U+XXXX, so no message carries raw separators or broken UTF-8.
std::string describe_character(std::string_view rest)
{
    const auto lead = static_cast<unsigned char>(rest.front());
    if (lead < 0x80)
        return escape_control_bytes(rest.substr(0, 1));
    const std::size_t length = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
    char32_t cp = lead & (length == 4 ? 0x07 : length == 3 ? 0x0f : 0x1f);
    bool valid = length > 1 && rest.size() >= length;
    for (std::size_t k = 1; valid && k < length; ++k) {
        valid = is_utf8_continuation(rest[k]);
        cp = (cp << 6) | (static_cast<unsigned char>(rest[k]) & 0x3f);
    }
    static constexpr char hex[] = "0123456789ABCDEF";
    std::string out = valid ? "U+" : "\\x";
    const unsigned value = valid ? static_cast<unsigned>(cp) : lead;
    for (int shift = valid ? (value > 0xffff ? 20 : 12) : 4; shift >= 0; shift -= 4)
        out += hex[(value >> shift) & 0xf];
    return out;
}

// Returns the index just past the string that starts at text[i] (a quote), or the end of the
// line for an unterminated single-line string. Escapes exist only in basic ("...") strings.
std::size_t skip_string(std::string_view text, std::size_t i)
{
    const char quote = text[i];
    const bool basic = quote == '"';
    const std::string_view triple = basic ? R"(""")" : "'''";
    if (text.substr(i, 3) == triple) {
        for (std::size_t j = i + 3; j < text.size(); ++j) {
            if (basic && text[j] == '\\') {
                ++j;
            } else if (text.substr(j, 3) == triple) {
                std::size_t end = j + 3;
                // Up to two quotes directly before the closing three belong to the string.
                for (int extra = 0; extra < 2 && end < text.size() && text[end] == quote; ++extra)
                    ++end;
                return end;
            }
        }
        return text.size();
    }
    for (std::size_t j = i + 1; j < text.size(); ++j) {
        if (basic && text[j] == '\\')
            ++j;
        else if (text[j] == quote)
            return j + 1;
        else if (text[j] == '\n')
            return j;
    }
    return text.size();
}

class scanner {
public:
    explicit scanner(std::string_view text) : text_(text)
    {
        if (text_.substr(0, 3) == "\xef\xbb\xbf")
            i_ = line_begin_ = statement_begin_ = 3;  // toml++ skips a byte order mark
    }

    std::optional<toml_defect> run()
    {
        while (i_ < text_.size()) {
            const char c = text_[i_];
            if (c == '#') {
                while (i_ < text_.size() && text_[i_] != '\n')
                    ++i_;
            } else if (c == '\n') {
                // Inside an array a new line continues the value; it starts no statement.
                statement_start_ = open_.empty();
                ++line_;
                line_begin_ = ++i_;
            } else if (c == ' ' || c == '\t' || c == '\r') {
                ++i_;
            } else if (auto defect = step(c)) {
                return defect;
            }
        }
        return std::nullopt;
    }

private:
    // One significant character (not blank, not a comment, not a line break).
    std::optional<toml_defect> step(char c)
    {
        if (statement_start_)
            statement_begin_ = line_begin_;
        const bool header = statement_start_ && c == '[';
        statement_start_ = false;

        if (expect_value_) {
            expect_value_ = false;
            if (c == '}' || is_unicode_line_separator(text_.substr(i_)))
                return defect_at(i_, "Error while parsing array: expected a value or ']', saw '" +
                                         describe_character(text_.substr(i_)) + "'");
        }
        if (header) {
            std::size_t j = i_ + 1;
            const bool array_header = j < text_.size() && text_[j] == '[';
            j += array_header ? 1 : 0;
            while (j < text_.size() && (text_[j] == ' ' || text_[j] == '\t'))
                ++j;
            if (j < text_.size() && text_[j] != ']' && !can_start_key(text_[j]))
                return defect_at(j, std::string{"Error while parsing table header: expected a key after '"} +
                                        (array_header ? "[[" : "[") + "', saw '" +
                                        describe_character(text_.substr(j)) + "'");
            open_.push_back('h');
            if (array_header) {
                open_.push_back('h');
                ++i_;
            }
            ++i_;
            return std::nullopt;
        }
        if (c == '"' || c == '\'') {
            const std::size_t end = skip_string(text_, i_);
            for (std::size_t j = i_; j < end; ++j) {
                if (text_[j] == '\n') {
                    ++line_;
                    line_begin_ = j + 1;
                }
            }
            i_ = end;
            return std::nullopt;
        }
        if (c == '[' || c == '{') {
            open_.push_back(c);
            expect_value_ = c == '[';
        } else if ((c == ']' || c == '}') && !open_.empty()) {
            open_.pop_back();
        } else if (c == ',' && !open_.empty() && open_.back() == '[') {
            expect_value_ = true;
        }
        ++i_;
        return std::nullopt;
    }

    toml_defect defect_at(std::size_t at, std::string message) const
    {
        int column = 1;
        for (std::size_t k = line_begin_; k < at; ++k)
            column += is_utf8_continuation(text_[k]) ? 0 : 1;  // toml++ counts code points
        return {statement_begin_, line_, column, std::move(message)};
    }

    std::string_view text_;
    std::size_t i_ = 0;
    std::size_t line_begin_ = 0;
    std::size_t statement_begin_ = 0;
    int line_ = 1;
    bool statement_start_ = true;
    bool expect_value_ = false;
    std::vector<char> open_;  ///< unclosed '[' (array), '{' (inline table), 'h' (header bracket)
};

}  // namespace

std::optional<toml_defect> find_toml_defect(std::string_view text)
{
    return scanner{text}.run();
}

}  // namespace portunusd::config_detail
