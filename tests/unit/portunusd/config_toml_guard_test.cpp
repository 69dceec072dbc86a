// SPDX-License-Identifier: MPL-2.0
// Tests of the pre-scan that shields toml++ 3.3 from inputs it mishandles: it must find them,
// and must never object to valid TOML.
#include "portunusd/config/config.hpp"
#include "portunusd/config/config_values.hpp"

#include <catch2/catch.hpp>
#include <toml++/toml.h>

#include <string>
#include <string_view>

using portunusd::config_detail::find_toml_defect;
using namespace std::string_view_literals;

TEST_CASE("config guard: valid TOML is never flagged", "[config][guard]")
{
    struct valid_case {
        std::string_view name;
        std::string_view text;
    };
    const valid_case cases[] = {
        {"empty", ""},
        {"headers with blanks and quoted keys", "[ a . \"b c\" . 'd' ]\n[[ e ]]\n[\tf]\n"},
        {"nested arrays on their own lines", "a = [\n  [1, 2],\n  [\n    3,\n  ],\n  []\n]\n"},
        {"arrays of inline tables", "a = [\n  { b = 1 },\n  { c = [ {}, { d = [] } ] },\n]\n"},
        {"comments inside arrays", "a = [ # [ not a header\n  1, # }\n  # ]\n  2\n]\n"},
        {"brackets inside strings", "a = \"[}\"\nb = '[#'\nc = \"\\\"[\"\n"},
        {"multi-line basic string with quotes",
         "a = \"\"\"\n[not a header\n} \"\" \\\"\"\" \n\"\"\"\"\"\n[t]\nb = 1\n"},
        {"multi-line literal string", "a = '''\n[\n}'''\n[t]\n"},
        {"line continuation", "a = \"\"\"one \\\n  [two]\"\"\"\n[t]\n"},
        {"byte order mark", "\xef\xbb\xbf[t]\na = 1\n"},
        {"crlf line ends", "[t]\r\na = [\r\n  1,\r\n]\r\n[u]\r\n"},
        {"array of tables after arrays", "x = [[1], [2]]\n[[t]]\n[[t]]\n"},
        {"a key named like a header char", "\"[\" = 1\n'}' = [ '}' ]\n"},
    };
    for (const valid_case& c : cases) {
        INFO(c.name);
        CHECK_NOTHROW(toml::parse(c.text));
        CHECK_FALSE(find_toml_defect(c.text));
    }
}

TEST_CASE("config guard: what toml++ 3.3 must not see is found", "[config][guard]")
{
    struct defect_case {
        std::string_view name;
        std::string_view text;
        std::size_t statement_offset;
        int line;
        int column;
        std::string_view message;
    };
    const defect_case cases[] = {
        {"header then line break", "a = 1\n[\n", 6, 2, 2,
         R"(Error while parsing table header: expected a key after '[', saw '\x0a')"},
        {"header then comment", "[ #x]\n", 0, 1, 3, "Error while parsing table header: expected a key after '[', saw '#'"},
        {"array header then equals", "x = 1\n[[ = ]]\n", 6, 2, 4,
         "Error while parsing table header: expected a key after '[[', saw '='"},
        {"header then NUL", "[\0]\n"sv, 0, 1, 2, R"(Error while parsing table header: expected a key after '[', saw '\x00')"},
        {"header then a non-ASCII letter", "[\xc3\xa9]\n", 0, 1, 2,
         "Error while parsing table header: expected a key after '[', saw 'U+00E9'"},
        {"header after a byte order mark", "\xef\xbb\xbf[.]\n", 3, 1, 2,
         "Error while parsing table header: expected a key after '[', saw '.'"},
        {"brace opens an array", "a = 1\nb = [ } ]\n", 6, 2, 7, "Error while parsing array: expected a value or ']', saw '}'"},
        {"brace after a comma, lines later", "[t]\nb = [\n  1,\n  # c\n  }\n]\n", 4, 5, 3,
         "Error while parsing array: expected a value or ']', saw '}'"},
        {"array in an inline table", "x = { a = [ } }\n", 0, 1, 13,
         "Error while parsing array: expected a value or ']', saw '}'"},
        {"line separator in an array", "a = [\xe2\x80\xa8]\n", 0, 1, 6,
         "Error while parsing array: expected a value or ']', saw 'U+2028'"},
        {"next line in an array", "a = [1, \xc2\x85]\n", 0, 1, 9,
         "Error while parsing array: expected a value or ']', saw 'U+0085'"},
    };
    for (const defect_case& c : cases) {
        INFO(c.name);
        const auto defect = find_toml_defect(c.text);
        REQUIRE(defect);
        CHECK(defect->statement_offset == c.statement_offset);
        CHECK(defect->line == c.line);
        CHECK(defect->column == c.column);
        CHECK(defect->message == c.message);
    }
}

TEST_CASE("config guard: an earlier syntax error is still reported first", "[config][guard]")
{
    const auto r = portunusd::parse_config_string("a = \n[daemon]\nb = [ }\n", "t.toml");
    REQUIRE(r.errors.size() == 1);
    CHECK(r.errors[0].to_string() == R"(t.toml:1:5: Error while parsing key-value pair: expected value, saw '\n')");

    const auto later = portunusd::parse_config_string("[daemon]\nthreads = 2\nb = [ }\n", "t.toml");
    REQUIRE(later.errors.size() == 1);
    CHECK(later.errors[0].to_string() == "t.toml:3:7: Error while parsing array: expected a value or ']', saw '}'");
}
