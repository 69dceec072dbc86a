// SPDX-License-Identifier: MPL-2.0
// Tests of check_door_paths(): which door directories are refused, and the messages.
#include "config_test_support.hpp"

namespace {

using namespace portunusd;
using namespace portunusd::test;

config config_with_doors(const std::vector<std::string>& doors, bool allow_insecure = false)
{
    std::string text = "[daemon]\nallow_insecure_door_dir = " + std::string{allow_insecure ? "true" : "false"} + "\n";
    int port = 7000;
    for (const std::string& door : doors)
        text += "\n[[forward]]\nprotocol = \"tcp\"\nlisten = \"127.0.0.1:" + std::to_string(port++) +
                "\"\ndoor = \"" + door + "\"\n";
    config_result r = parse_config_string(text, "doors.toml");
    INFO(render(r.errors));
    REQUIRE(r.value);
    return std::move(*r.value);
}

}  // namespace

TEST_CASE("config: door directory check", "[config][door]")
{
    const scratch_dir tmp;
    const fs::path safe = tmp.make("safe", 0755);
    const fs::path world = tmp.make("world", 0777);
    const fs::path sticky = tmp.make("sticky", 01777);
    const fs::path group = tmp.make("group", 0775);
    const fs::path file = tmp.path() / "plain";
    std::ofstream{file} << "x";

    const config cfg = config_with_doors({
        (safe / "a.door").string(),
        (world / "b.door").string(),
        (sticky / "c.door").string(),
        (group / "d.door").string(),
        (tmp.path() / "missing" / "e.door").string(),
        (file / "f.door").string(),
    });
    const std::string t = tmp.path().string();
    const std::string expected =
        "doors.toml:12:8: door: directory \"" + t + "/world\" is writable by its group and others (mode 0777), "
        "so another user could replace the door; use a directory only its owner can write, or set "
        "allow_insecure_door_dir = true\n"
        "doors.toml:17:8: door: directory \"" + t + "/sticky\" is writable by its group and others (mode 1777), "
        "so another user could replace the door; use a directory only its owner can write, or set "
        "allow_insecure_door_dir = true\n"
        "doors.toml:22:8: door: directory \"" + t + "/group\" is writable by its group (mode 0775), "
        "so another user could replace the door; use a directory only its owner can write, or set "
        "allow_insecure_door_dir = true\n"
        "doors.toml:27:8: warning: door: directory \"" + t + "/missing\" does not exist yet; the application "
        "that serves this door needs it (create it, writable only by its owner, before starting the application)\n"
        "doors.toml:32:8: door: \"" + t + "/plain\" is not a directory\n";
    CHECK(render(check_door_paths(cfg)) == expected);

    SECTION("allow_insecure_door_dir accepts writable directories and still warns of missing ones")
    {
        const config relaxed = config_with_doors({(world / "b.door").string(), (group / "d.door").string(),
                                                  (tmp.path() / "missing" / "e.door").string()},
                                                 true);
        CHECK(render(check_door_paths(relaxed)) ==
              "doors.toml:17:8: warning: door: directory \"" + t + "/missing\" does not exist yet; the application "
              "that serves this door needs it (create it, writable only by its owner, before starting the "
              "application)\n");
    }
    SECTION("a door in the root directory")
    {
        CHECK(check_door_paths(config_with_doors({"/x.door"})).empty());
    }
}

TEST_CASE("config: door directory check covers every map of an http forward", "[config][door][http]")
{
    const scratch_dir tmp;
    const std::string safe = tmp.make("safe", 0755).string();
    const std::string world = tmp.make("world", 0777).string();
    const std::string missing = (tmp.path() / "missing").string();
    const std::string text = "[[forward]]\nprotocol = \"http\"\nlisten = \"127.0.0.1:8080\"\n"
                             "\n[[forward.map]]\nprefix = \"/a\"\ndoor = \"" + safe + "/a.door\"\n"
                             "\n[[forward.map]]\nprefix = \"/b\"\ndoor = \"" + world + "/b.door\"\n"
                             "\n[[forward.map]]\nprefix = \"/c\"\ndoor = \"" + missing + "/c.door\"\n"
                             "\n[[forward]]\nprotocol = \"http\"\nlisten = \"127.0.0.1:8081\"\n"
                             "door = \"" + world + "/d.door\"\n"
                             "[[forward.map]]\nprefix = \"/e\"\ndoor = \"" + world + "/e.door\"\n";
    config_result r = parse_config_string(text, "maps.toml");
    INFO(render(r.errors));
    REQUIRE(r.value);
    // The first forward has no door of its own; each map's door is checked where it is written,
    // once per door even when doors share a directory.
    const std::string insecure = "\" is writable by its group and others (mode 0777), so another user could "
                                 "replace the door; use a directory only its owner can write, or set "
                                 "allow_insecure_door_dir = true\n";
    CHECK(render(check_door_paths(*r.value)) == "maps.toml:11:8: door: directory \"" + world + insecure +
                                                    "maps.toml:15:8: warning: door: directory \"" + missing +
                                                    "\" does not exist yet; the application that serves this "
                                                    "door needs it (create it, writable only by its owner, "
                                                    "before starting the application)\n"
                                                    "maps.toml:20:8: door: directory \"" + world + insecure +
                                                    "maps.toml:23:8: door: directory \"" + world + insecure);
}

TEST_CASE("config: load_config reports value errors and door directory problems in one round", "[config][door]")
{
    const scratch_dir tmp;
    const std::string world = tmp.make("world", 0777).string();
    const std::string missing = (tmp.path() / "missing").string();
    const fs::path path = tmp.path() / "both.toml";
    std::ofstream{path} << "[[forward]]\nprotocol = \"tcp\"\nlisten = \"127.0.0.1:7007\"\n"
                        << "door = \"" << world << "/a.door\"\nmax_concurrency = 0\n"
                        << "\n[[forward]]\nprotocol = \"udp\"\nlisten = \"127.0.0.1:7007\"\n"
                        << "door = \"" << missing << "/b.door\"\nqueue = \"x\"\n"
                        << "\n[[forward]]\nprotocol = \"tcp\"\nlisten = \"127.0.0.1:7008\"\ndoor = \"relative.door\"\n";
    const config_result r = load_config(path.string());
    CHECK_FALSE(r.value);
    const std::string p = path.string();
    CHECK(render(r.errors) ==
          p + ":4:8: door: directory \"" + world + "\" is writable by its group and others (mode 0777), so another "
              "user could replace the door; use a directory only its owner can write, or set "
              "allow_insecure_door_dir = true\n" +
          p + ":5:19: max_concurrency: 0 is out of range; expected 1..4096\n" +
          p + ":11:9: queue: expected an integer, found a string\n" +
          p + ":16:8: door: \"relative.door\" is not an absolute path\n");
    REQUIRE(r.warnings.size() == 1);
    CHECK(r.warnings[0].line == 10);
    // What `portunusd -n` prints: both kinds, in the order of the file.
    const auto all = all_problems(r);
    REQUIRE(all.size() == 5);
    CHECK(all[2].message.starts_with("warning: door: directory \"" + missing + "\" does not exist yet"));
}
