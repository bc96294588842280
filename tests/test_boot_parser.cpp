#include <azops/boot_parser.hpp>
#include <azops/log_tail.hpp>

#include <doctest/doctest.h>

#include "test_helpers.hpp"

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

using azops::BootLogParser;
using azops::BootPhase;

namespace {

// The parser's view after one line of a log.
struct Seen {
    std::string line;  // sanitised
    bool changed = false;
    BootPhase phase = BootPhase::waiting;
    int step = 0;
    double progress = 0;
    std::optional<double> pct;
    std::optional<double> eta;
    std::string detail;
    std::optional<std::string> error;
};

struct Replay {
    BootLogParser parser;
    std::vector<Seen> seen;

    // The first line whose sanitised text starts with `prefix` (after wget's padding blanks).
    const Seen& at(const std::string& prefix) const {
        for (const auto& s : seen) {
            const std::size_t text = std::min(s.line.find_first_not_of(' '), s.line.size());
            if (s.line.compare(text, prefix.size(), prefix) == 0) return s;
        }
        FAIL("no line starts with: " << prefix);
        return seen.front();
    }

    // Consecutive duplicates removed.
    std::vector<BootPhase> phases() const {
        std::vector<BootPhase> out;
        for (const auto& s : seen) {
            if (out.empty() || out.back() != s.phase) out.push_back(s.phase);
        }
        return out;
    }

    std::vector<int> steps() const {
        std::vector<int> out;
        for (const auto& s : seen) {
            if (out.empty() || out.back() != s.step) out.push_back(s.step);
        }
        return out;
    }
};

Replay replay_text(const std::string& text) {
    Replay r;
    azops::LineSplitter splitter;
    const auto on_line = [&](std::string_view raw) {
        Seen s;
        s.line = azops::sanitize_line(raw);
        s.changed = r.parser.feed(s.line);
        s.phase = r.parser.phase();
        s.step = r.parser.step();
        s.progress = r.parser.progress_fraction();
        s.pct = r.parser.download_pct();
        s.eta = r.parser.download_eta_seconds();
        s.detail = r.parser.detail();
        s.error = r.parser.error();
        r.seen.push_back(std::move(s));
    };
    splitter.feed(text, on_line);
    splitter.finish(on_line);
    return r;
}

Replay replay_file(const std::string& name) {
    const std::string text = azops_test::read_file(std::string(AZOPS_TEST_DATA_DIR) + "/boot/" + name);
    REQUIRE_MESSAGE(!text.empty(), "missing test log " << name);
    return replay_text(text);
}

void check_progress_never_goes_back(const Replay& r) {
    double previous = 0;
    for (const auto& s : r.seen) {
        INFO("line: " << s.line);
        CHECK(s.progress >= previous);
        CHECK(s.progress <= 1.0);
        previous = s.progress;
    }
}

// Feeds `lines` in order to a fresh parser.
BootLogParser fed(const std::vector<std::string>& lines) {
    BootLogParser p;
    for (const auto& line : lines) p.feed(line);
    return p;
}

const std::string downloading = "\xE2\x9D\xAF Downloading Windows 11 Enterprise...";

}  // namespace

TEST_CASE("boot log, first boot: every phase in order, step X of 7, ends started with the VNC hint") {
    const Replay r = replay_file("first_boot.log");
    CHECK(r.phases() == std::vector<BootPhase>{BootPhase::waiting, BootPhase::downloading, BootPhase::extracting,
                                               BootPhase::adding_drivers, BootPhase::building_image,
                                               BootPhase::creating_disk, BootPhase::booting, BootPhase::started});
    CHECK(r.steps() == std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7});
    check_progress_never_goes_back(r);

    CHECK(r.seen.front().line == "\xE2\x9D\xAF Starting Windows for Docker v4.35...");
    CHECK(r.seen.front().changed);

    const Seen& requesting = r.at("\xE2\x9D\xAF Requesting");
    CHECK(requesting.phase == BootPhase::downloading);
    CHECK_FALSE(requesting.pct.has_value());
    CHECK(requesting.progress == doctest::Approx(0.05));

    const Seen& first_row = r.at("0K ........");
    CHECK(first_row.pct == 0.0);
    CHECK(first_row.eta == 52.0);

    const Seen& row = r.at("3047424K");
    CHECK(row.pct == 48.0);
    CHECK(row.eta == 30.0);
    CHECK(row.detail == "Downloading Windows 11 Enterprise... 48% (30s left)");
    CHECK(row.progress == doctest::Approx(0.05 + 0.40 * 0.48));

    // wget leaves its last row open, so the next `❯` line arrives on the same line.
    const Seen& glued = r.at("6291456K");
    CHECK(glued.phase == BootPhase::extracting);
    CHECK(glued.detail == "Extracting Windows 11 Enterprise image...");
    CHECK_FALSE(glued.pct.has_value());

    CHECK(r.at("\xE2\x9D\xAF Detected: Windows 11").detail == "Detected: Windows 11 Enterprise Evaluation");
    CHECK(r.at("\xE2\x9D\xAF Adding drivers").detail == "Adding drivers to image...");

    // Firmware lines end in CRLF; they and the cleared "Press any key" line change nothing.
    const Seen& firmware = r.at("BdsDxe: loading Boot0004");
    CHECK_FALSE(firmware.changed);
    CHECK(firmware.phase == BootPhase::booting);

    const BootLogParser& p = r.parser;
    CHECK(p.phase() == BootPhase::started);
    CHECK(p.phase_name() == "windows_started");
    CHECK(p.step() == 7);
    CHECK(p.total_steps() == 7);
    CHECK(p.progress_fraction() == 1.0);
    CHECK(p.vnc_hint_url() == std::optional<std::string>("http://127.0.0.1:8006/"));
    CHECK_FALSE(p.error().has_value());
    CHECK(p.is_boot_log());
    CHECK(p.restarts() == 0);
    CHECK(p.detail() == "Windows started successfully, visit http://127.0.0.1:8006/ to view the screen...");
}

TEST_CASE("boot log, restart from an installed disk: no download, straight to booting then started") {
    const Replay r = replay_file("reboot_existing_image.log");
    CHECK(r.phases() == std::vector<BootPhase>{BootPhase::waiting, BootPhase::booting, BootPhase::started});
    CHECK(r.steps() == std::vector<int>{0, 6, 7});
    for (const auto& s : r.seen) CHECK_FALSE(s.pct.has_value());
    check_progress_never_goes_back(r);
    CHECK(r.at("\xE2\x9D\xAF Booting").progress == doctest::Approx(0.90));
    CHECK(r.parser.progress_fraction() == 1.0);
    CHECK(r.parser.vnc_hint_url() == std::optional<std::string>("http://127.0.0.1:8006/"));
}

TEST_CASE("boot log, not enough free space: fails in the extraction step with the container's message") {
    const Replay r = replay_file("no_free_space.log");
    CHECK(r.phases() == std::vector<BootPhase>{BootPhase::waiting, BootPhase::downloading, BootPhase::extracting,
                                               BootPhase::failed});
    check_progress_never_goes_back(r);

    const Seen& last_row = r.at("6291456K");
    CHECK(last_row.phase == BootPhase::downloading);
    CHECK(last_row.pct == 100.0);
    CHECK(last_row.eta == 0.0);  // "=67s" is the total time of a finished download
    CHECK(last_row.detail == "Downloading Windows 11 Enterprise... 100%");
    CHECK(last_row.progress == doctest::Approx(0.45));

    const BootLogParser& p = r.parser;
    CHECK(p.phase() == BootPhase::failed);
    CHECK(p.phase_name() == "failed");
    CHECK(p.step() == 2);
    CHECK(p.error() ==
          std::optional<std::string>("Not enough free space in /storage, have 5 GB available but need at least 7 GB."));
    CHECK(p.detail() == "ERROR: Not enough free space in /storage, have 5 GB available but need at least 7 GB.");
    CHECK(p.progress_fraction() == doctest::Approx(0.45));
    CHECK_FALSE(p.vnc_hint_url().has_value());
}

TEST_CASE("boot log, blocked download: the mirror attempt clears the error, the mirror's failure ends the boot") {
    const Replay r = replay_file("download_blocked.log");
    CHECK(r.phases() == std::vector<BootPhase>{BootPhase::waiting, BootPhase::downloading, BootPhase::failed,
                                               BootPhase::downloading, BootPhase::failed});
    check_progress_never_goes_back(r);

    const Seen& blocked = r.at("\xE2\x9D\xAF ERROR: Microsoft blocked");
    CHECK(blocked.error ==
          std::optional<std::string>("Microsoft blocked the automated download request based on your IP address."));
    CHECK(blocked.step == 1);

    const Seen& retry = r.at("\xE2\x9D\xAF Failed to download Windows 11, will try");
    CHECK(retry.phase == BootPhase::downloading);
    CHECK_FALSE(retry.error.has_value());

    CHECK(r.at("0K ........").eta == 597.0);  // 9m57s
    CHECK(r.at("131072K").eta == 526.0);      // 8m46s

    const BootLogParser& p = r.parser;
    CHECK(p.phase() == BootPhase::failed);
    CHECK(p.step() == 1);
    CHECK(p.error() == std::optional<std::string>(
                           "Failed to download https://files.example.net/iso/Win11_24H2_English_x64.iso , reason: 4"));
    CHECK(p.download_pct() == 2.0);  // how far the failed download got
    CHECK(p.progress_fraction() == doctest::Approx(0.05 + 0.40 * 0.02));
}

TEST_CASE("boot log: wget's remaining-time forms become seconds") {
    const auto eta_after = [](const std::string& row) {
        BootLogParser p;
        p.feed(downloading);
        p.feed(row);
        return p.download_eta_seconds();
    };
    CHECK(eta_after("3342336K ........ ........ ........ ........ 52%  118M 28s") == 28.0);
    CHECK(eta_after("     0K ........ ........ ........ ........  0% 71.2M 1m27s") == 87.0);
    CHECK(eta_after(" 32768K ........ ........ ........ ........  0% 1.47M 1h2m") == 3720.0);
    CHECK(eta_after(" 32768K ........ ........ ........ ........  0%  210K 2d3h") == 183600.0);
    CHECK(eta_after(" 32768K ........ ........ ........ ........  0% 9.00K 120d") == 120 * 86400.0);
    CHECK(eta_after("6291456K ...                                100%  114M=58s") == 0.0);
    CHECK(eta_after("   0K ........ ....                          100% 98.1M=9.5s") == 0.0);
    // Not wget's forms: the percentage still counts, the time does not.
    CHECK_FALSE(eta_after(" 32768K ........ ........ ........ ........  1%  100M 27s1m").has_value());
    CHECK_FALSE(eta_after(" 32768K ........ ........ ........ ........  1%  100M 3x").has_value());
    CHECK_FALSE(eta_after(" 32768K ........ ........ ........ ........  1%  100M").has_value());
}

TEST_CASE("boot log: dot rows of unknown size, resumed downloads and the TTY bar") {
    SUBCASE("no percentage when the server gives no size: still downloading, no figure") {
        const auto p = fed({downloading, " 32768K ........ ........ ........ ........  118M"});
        CHECK(p.phase() == BootPhase::downloading);
        CHECK_FALSE(p.download_pct().has_value());
    }
    SUBCASE("a resumed download shows what it already had as commas") {
        const auto p = fed({downloading, "  65536K ,,,,,,,, ,,,,,,,, ........ ........  1%  100M 1m0s"});
        CHECK(p.download_pct() == 1.0);
        CHECK(p.download_eta_seconds() == 60.0);
    }
    SUBCASE("the bar wget draws on a terminal") {
        auto p = fed({downloading, "win11x64.iso         52%[=========>          ]   3.21G   118MB/s    eta 1m 27s"});
        CHECK(p.download_pct() == 52.0);
        CHECK(p.download_eta_seconds() == 87.0);
        p.feed("win11x64.iso        100%[===================>]   6.00G   112MB/s    in 58s");
        CHECK(p.download_pct() == 100.0);
        CHECK(p.download_eta_seconds() == 0.0);
    }
    SUBCASE("rows that only look like progress are ignored") {
        const auto p = fed({downloading, "12K of output", "100%[", " 5K .... 250%  1M 2s", "Step 1/30 : FROM x"});
        CHECK_FALSE(p.download_pct().has_value());
        CHECK(p.detail() == "Downloading Windows 11 Enterprise...");
    }
}

TEST_CASE("boot log: a log picked up in the middle of a download starts downloading at its first row") {
    BootLogParser p;
    CHECK(p.feed("1048576K ........ ........ ........ ........ 17%  112M 48s"));
    CHECK(p.phase() == BootPhase::downloading);
    CHECK(p.step() == 1);
    CHECK(p.download_pct() == 17.0);
    CHECK(p.detail() == "Downloading Windows... 17% (48s left)");
    CHECK_FALSE(p.is_boot_log());  // a dot row alone does not say who printed it
}

TEST_CASE("boot log: dot rows outside the download change nothing") {
    auto p = fed({"\xE2\x9D\xAF Booting Windows using QEMU v9.2.2..."});
    CHECK_FALSE(p.feed("     0K ........ ........ ........ ........  5%  118M 28s"));
    CHECK(p.phase() == BootPhase::booting);
    CHECK_FALSE(p.download_pct().has_value());
}

TEST_CASE("boot log: docker logs --timestamps prefixes are skipped") {
    const auto p = fed({"2026-01-28T22:55:14.123456789Z \xE2\x9D\xAF Starting Windows for Docker v4.35...",
                        "2026-01-28T22:55:20.5Z \xE2\x9D\xAF Booting Windows using QEMU v9.2.2..."});
    CHECK(p.phase() == BootPhase::booting);
    CHECK(p.detail() == "Booting Windows using QEMU v9.2.2...");
}

TEST_CASE("boot log: the first of several ERROR lines is the error — a new container start clears it") {
    BootLogParser p;
    p.feed("\xE2\x9D\xAF Starting Windows for Docker v4.35...");
    p.feed("\xE2\x9D\xAF ERROR: KVM acceleration not available (device file /dev/kvm is missing), this will cause a "
           "major loss of performance.");
    CHECK(p.phase() == BootPhase::failed);
    CHECK(p.step() == 0);
    CHECK_FALSE(p.feed("\xE2\x9D\xAF ERROR: See the FAQ for possible causes, or continue without it by adding KVM: "
                       "\"N\" (not recommended)."));
    CHECK(p.error() == std::optional<std::string>("KVM acceleration not available (device file /dev/kvm is missing), "
                                                  "this will cause a major loss of performance."));
    CHECK(p.feed("\xE2\x9D\xAF Starting Windows for Docker v4.35..."));
    CHECK(p.phase() == BootPhase::waiting);
    CHECK_FALSE(p.error().has_value());
    CHECK(p.restarts() == 1);
}

TEST_CASE("boot log: a container restarted after Windows started goes through booting again, progress stays") {
    auto p = replay_file("reboot_existing_image.log").parser;
    CHECK(p.feed("\xE2\x9D\xAF Starting Windows for Docker v4.35..."));
    CHECK(p.phase() == BootPhase::waiting);
    CHECK(p.step() == 0);
    CHECK(p.restarts() == 1);
    CHECK(p.progress_fraction() == 1.0);
    p.feed("\xE2\x9D\xAF Resizing data disk from 32G to 64G...");
    CHECK(p.phase() == BootPhase::creating_disk);
    p.feed("\xE2\x9D\xAF Booting Windows using QEMU v9.2.2...");
    p.feed("\xE2\x9D\xAF Windows started successfully, visit http://127.0.0.1:8006/ to view the screen...");
    CHECK(p.phase() == BootPhase::started);
    CHECK(p.progress_fraction() == 1.0);
}

TEST_CASE("boot log: a new download attempt resets the figures but not the progress") {
    auto p = fed({downloading, "2097152K ........ ........ ........ ........ 34%  101M 40s"});
    const double before = p.progress_fraction();
    p.feed("\xE2\x9D\xAF Downloading Windows 11 Enterprise from files.example.net...");
    CHECK_FALSE(p.download_pct().has_value());
    CHECK(p.detail() == "Downloading Windows 11 Enterprise from files.example.net...");
    p.feed("     0K ........ ........ ........ ........  0% 9.47M 9m57s");
    CHECK(p.download_pct() == 0.0);
    CHECK(p.progress_fraction() == before);
}

TEST_CASE("boot log: other tools' lines are not a boot log and change nothing") {
    BootLogParser p;
    for (const char* line : {"\xE2\x9D\xAF ls -la", "hello", "Step 1/30 : FROM dockurr/windows:latest", "",
                             "\xE2\x9D\xAF", "BdsDxe: loading Boot0004 \"UEFI Misc Device\""}) {
        CHECK_FALSE(p.feed(line));
    }
    CHECK_FALSE(p.is_boot_log());
    CHECK(p.phase() == BootPhase::waiting);
    CHECK(p.progress_fraction() == 0.0);
    CHECK(p.detail().empty());
}

TEST_CASE("boot log: feed reports a change only when something it reports changed") {
    BootLogParser p;
    CHECK(p.feed("\xE2\x9D\xAF Booting Windows using QEMU v9.2.2..."));
    CHECK_FALSE(p.feed("\xE2\x9D\xAF Booting Windows using QEMU v9.2.2..."));
    CHECK_FALSE(p.feed("\xE2\x9D\xAF Warning: the driver for the balloon device was not found."));
    CHECK_FALSE(p.feed("\xE2\x9D\xAF For support visit https://github.com/dockur/windows"));
    CHECK_FALSE(p.vnc_hint_url().has_value());  // only the "started successfully" line names the viewer
    CHECK(p.feed("\xE2\x9D\xAF Windows started successfully, visit http://127.0.0.1:8006/ to view the screen..."));
}

TEST_CASE("boot log: an ERROR without text still fails, and names itself") {
    const auto p = fed({"\xE2\x9D\xAF ERROR:"});
    CHECK(p.phase() == BootPhase::failed);
    CHECK(p.error() == std::optional<std::string>("unspecified error"));
    CHECK(p.is_boot_log());
}

TEST_CASE("boot log: phase names are the machine-readable status phases") {
    CHECK(azops::boot_phase_name(BootPhase::waiting) == "waiting_for_container");
    CHECK(azops::boot_phase_name(BootPhase::downloading) == "downloading_windows");
    CHECK(azops::boot_phase_name(BootPhase::extracting) == "extracting_image");
    CHECK(azops::boot_phase_name(BootPhase::adding_drivers) == "adding_drivers");
    CHECK(azops::boot_phase_name(BootPhase::building_image) == "building_image");
    CHECK(azops::boot_phase_name(BootPhase::creating_disk) == "creating_disk");
    CHECK(azops::boot_phase_name(BootPhase::booting) == "booting_qemu");
    CHECK(azops::boot_phase_name(BootPhase::started) == "windows_started");
    CHECK(azops::boot_phase_name(BootPhase::failed) == "failed");
}
