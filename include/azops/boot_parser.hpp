// azops/boot_parser.hpp — the Windows container's boot log (dockurr/windows) as boot phases.
//
// Owns: BootLogParser, fed one sanitised line at a time (see log_tail.hpp). It turns the container's
// `❯ <text>` info lines, its `❯ ERROR: <text>` lines and wget's download progress (dot rows such as
// `3342336K ........ ........ 52%  118M 28s`, or the bar form when the container had a TTY) into a
// phase, step X of Y, download % and remaining seconds, a progress fraction that never goes
// backwards, the VNC hint URL and the error that stopped the boot.
// Thread-safety: a plain value; the owner guards it. Errors: none — every line is accepted, lines the
// parser does not know leave its state alone; nothing throws but std::bad_alloc.
#pragma once

#include <cmath>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include <azops/detail/text.hpp>

namespace azops {

// The phases of a dockurr/windows container, in the order a first boot goes through them. A boot
// from an installed disk goes from `waiting` straight to `booting`.
enum class BootPhase {
    waiting,         // nothing yet, or the container's banner
    downloading,     // asking Microsoft for the ISO, then wget
    extracting,      // unpacking the ISO, detecting the edition
    adding_drivers,  // answer file, virtio drivers, OEM folder
    building_image,  // writing the prepared ISO
    creating_disk,   // creating (or resizing) the data disk
    booting,         // QEMU started
    started,         // QEMU shows a screen; Windows Setup goes on inside the VM
    failed,          // a `❯ ERROR:` line the container did not recover from
};

// Machine-readable name of a phase, as written to the status file's `phase`.
inline std::string_view boot_phase_name(BootPhase phase) noexcept {
    switch (phase) {
        case BootPhase::waiting: return "waiting_for_container";
        case BootPhase::downloading: return "downloading_windows";
        case BootPhase::extracting: return "extracting_image";
        case BootPhase::adding_drivers: return "adding_drivers";
        case BootPhase::building_image: return "building_image";
        case BootPhase::creating_disk: return "creating_disk";
        case BootPhase::booting: return "booting_qemu";
        case BootPhase::started: return "windows_started";
        case BootPhase::failed: return "failed";
    }
    return "failed";
}

namespace detail::boot {

inline constexpr std::string_view info_marker = "\xE2\x9D\xAF ";  // "❯ " (U+276F)

using text::contains;
using text::is_digit;
using text::starts_with;
using text::trim_blanks;

// `docker logs --timestamps` puts `2026-01-28T22:55:14.123456789Z ` before every line.
inline std::string_view strip_docker_timestamp(std::string_view s) noexcept {
    if (s.size() < 21 || !is_digit(s[0]) || s[4] != '-' || s[10] != 'T') return s;
    const std::size_t z = s.find("Z ", 19);
    if (z > 36) return s;  // npos too: no timestamp
    return s.substr(z + 2);
}

// A run of digits with an optional fraction, at most 12 digits in all so the value stays exact.
inline std::optional<double> parse_decimal(std::string_view s, std::size_t& i) noexcept {
    double value = 0;
    int digits = 0;
    while (i < s.size() && is_digit(s[i])) {
        if (++digits > 12) return std::nullopt;
        value = value * 10 + (s[i++] - '0');
    }
    if (digits == 0) return std::nullopt;
    if (i < s.size() && s[i] == '.') {
        ++i;
        double scale = 0.1;
        while (i < s.size() && is_digit(s[i])) {
            if (++digits > 12) return std::nullopt;
            value += (s[i++] - '0') * scale;
            scale /= 10;
        }
    }
    return value;
}

// wget's short durations: `28s`, `1m27s`, `1h2m`, `2d3h`, `120d`; the bar form puts spaces between
// the parts (`1m 27s`); a finished download prints its total time, possibly with a fraction (`0.8s`).
inline std::optional<double> parse_duration(std::string_view s) noexcept {
    s = trim_blanks(s);
    if (s.empty()) return std::nullopt;
    double total = 0;
    int last_rank = 5;
    std::size_t i = 0;
    while (i < s.size()) {
        const auto number = parse_decimal(s, i);
        if (!number || i >= s.size()) return std::nullopt;
        int rank = 0;
        double unit = 0;
        switch (s[i]) {
            case 'd': rank = 4; unit = 86400; break;
            case 'h': rank = 3; unit = 3600; break;
            case 'm': rank = 2; unit = 60; break;
            case 's': rank = 1; unit = 1; break;
            default: return std::nullopt;
        }
        if (rank >= last_rank) return std::nullopt;
        last_rank = rank;
        total += *number * unit;
        ++i;
        while (i < s.size() && s[i] == ' ') ++i;
    }
    return total;
}

struct DownloadProgress {
    std::optional<double> pct;
    std::optional<double> eta_seconds;
};

// A wget dot row: `<bytes>K <dots> <pct>% <speed> <eta>`; the last row ends `<speed>=<total time>`.
// A resumed download shows the part it already had as `,`. A download of unknown size prints no
// percentage: still a progress row, without a figure.
inline std::optional<DownloadProgress> parse_wget_dots(std::string_view s) noexcept {
    std::size_t i = 0;
    while (i < s.size() && s[i] == ' ') ++i;
    const std::size_t digits_begin = i;
    while (i < s.size() && is_digit(s[i])) ++i;
    if (i == digits_begin || i - digits_begin > 15 || i + 1 >= s.size()) return std::nullopt;
    if ((s[i] != 'K' && s[i] != 'M' && s[i] != 'G') || s[i + 1] != ' ') return std::nullopt;
    i += 2;
    std::size_t dots = 0;
    for (; i < s.size() && (s[i] == '.' || s[i] == ',' || s[i] == ' '); ++i) {
        if (s[i] != ' ') ++dots;
    }
    if (dots == 0) return std::nullopt;
    DownloadProgress progress;
    if (i == s.size()) return progress;
    std::size_t pct_end = i;
    while (pct_end < s.size() && is_digit(s[pct_end])) ++pct_end;
    if (pct_end == i || pct_end - i > 3 || pct_end >= s.size() || s[pct_end] != '%') return std::nullopt;
    int pct = 0;
    for (std::size_t k = i; k < pct_end; ++k) pct = pct * 10 + (s[k] - '0');
    if (pct > 100) return std::nullopt;
    progress.pct = pct;
    std::string_view rest = trim_blanks(s.substr(pct_end + 1));
    const std::size_t speed_end = rest.find_first_of(" =");
    if (speed_end == std::string_view::npos) return progress;
    if (rest[speed_end] == '=') {
        if (parse_duration(rest.substr(speed_end + 1))) progress.eta_seconds = 0.0;
        return progress;
    }
    progress.eta_seconds = parse_duration(rest.substr(speed_end + 1));
    return progress;
}

// wget's bar: `win11x64.iso   52%[=======>      ]   3.21G  118MB/s    eta 28s` (ends `in 58s`).
inline std::optional<DownloadProgress> parse_wget_bar(std::string_view s) noexcept {
    const std::size_t bar = s.find("%[");
    if (bar == std::string_view::npos || bar == 0) return std::nullopt;
    std::size_t begin = bar;
    while (begin > 0 && is_digit(s[begin - 1]) && bar - begin < 3) --begin;
    if (begin == bar || (begin > 0 && s[begin - 1] != ' ')) return std::nullopt;
    int pct = 0;
    for (std::size_t k = begin; k < bar; ++k) pct = pct * 10 + (s[k] - '0');
    const std::size_t close = s.find(']', bar);
    if (pct > 100 || close == std::string_view::npos) return std::nullopt;
    DownloadProgress progress;
    progress.pct = pct;
    const std::string_view tail = s.substr(close);
    if (const std::size_t eta = tail.rfind(" eta "); eta != std::string_view::npos) {
        progress.eta_seconds = parse_duration(tail.substr(eta + 5));
    } else if (const std::size_t done = tail.rfind(" in "); done != std::string_view::npos) {
        if (parse_duration(tail.substr(done + 4))) progress.eta_seconds = 0.0;
    }
    return progress;
}

// `1h02m`, `1m27s`, `28s`: short enough for the status line.
inline std::string format_seconds(double seconds) {
    const long s = std::lround(seconds);
    if (s < 60) return std::to_string(s) + "s";
    if (s < 3600) return std::to_string(s / 60) + "m" + (s % 60 < 10 ? "0" : "") + std::to_string(s % 60) + "s";
    const long m = (s / 60) % 60;
    return std::to_string(s / 3600) + "h" + (m < 10 ? "0" : "") + std::to_string(m) + "m";
}

// Where each phase starts on the progress bar. A first boot spends comparable time downloading,
// unpacking and rebuilding the ISO, then little creating the disk and starting QEMU.
inline double phase_start_fraction(BootPhase phase) noexcept {
    switch (phase) {
        case BootPhase::waiting: return 0.0;
        case BootPhase::downloading: return 0.05;
        case BootPhase::extracting: return 0.45;
        case BootPhase::adding_drivers: return 0.60;
        case BootPhase::building_image: return 0.70;
        case BootPhase::creating_disk: return 0.85;
        case BootPhase::booting: return 0.90;
        case BootPhase::started: return 1.0;
        case BootPhase::failed: return 0.0;
    }
    return 0.0;
}

inline constexpr double download_share = 0.40;  // downloading runs from 0.05 to 0.45

// What a `❯ ` line (marker already removed) tells about the boot.
enum class InfoKind { error, warning, banner, preamble, phase, other };

struct InfoLine {
    InfoKind kind = InfoKind::other;
    BootPhase phase = BootPhase::waiting;  // for InfoKind::phase
    std::string_view text;                 // for errors, the message after `ERROR:`
};

inline InfoLine classify_info(std::string_view text) noexcept {
    const auto phase = [&](BootPhase p) { return InfoLine{InfoKind::phase, p, text}; };
    if (starts_with(text, "ERROR:")) return {InfoKind::error, BootPhase::failed, trim_blanks(text.substr(6))};
    if (starts_with(text, "Warning:")) return {InfoKind::warning, BootPhase::waiting, text};
    if (starts_with(text, "Starting ") && contains(text, " for Docker")) return {InfoKind::banner, BootPhase::waiting, text};
    if (starts_with(text, "For support visit") || starts_with(text, "CPU: ")) {
        return {InfoKind::preamble, BootPhase::waiting, text};
    }
    if (starts_with(text, "Requesting ") || starts_with(text, "Downloading ")) return phase(BootPhase::downloading);
    // The container tries another source after a failed or blocked download.
    if (starts_with(text, "Failed to download ") && contains(text, "will try")) return phase(BootPhase::downloading);
    if (starts_with(text, "Extracting ")) return phase(BootPhase::extracting);
    if (starts_with(text, "Adding ")) return phase(BootPhase::adding_drivers);
    if (starts_with(text, "Building ")) return phase(BootPhase::building_image);
    if (starts_with(text, "Creating a ") || starts_with(text, "Resizing ")) return phase(BootPhase::creating_disk);
    if (starts_with(text, "Booting ")) return phase(BootPhase::booting);
    if (contains(text, " started successfully")) return phase(BootPhase::started);
    return {InfoKind::other, BootPhase::waiting, text};
}

// A line that starts a new download attempt, so the previous attempt's figures no longer apply.
inline bool starts_download_attempt(std::string_view text) noexcept {
    return starts_with(text, "Downloading ") || starts_with(text, "Failed to download ");
}

// The URL after "visit " in `Windows started successfully, visit http://127.0.0.1:8006/ to view the screen...`.
inline std::optional<std::string_view> visit_url(std::string_view text) noexcept {
    const std::size_t visit = text.find("visit ");
    if (visit == std::string_view::npos) return std::nullopt;
    std::string_view url = text.substr(visit + 6);
    url = url.substr(0, url.find(' '));
    while (!url.empty() && (url.back() == '.' || url.back() == ',')) url.remove_suffix(1);
    if (!starts_with(url, "http://") && !starts_with(url, "https://")) return std::nullopt;
    return url;
}

// Progress from a wget line of either form, or nothing when the line is not one.
inline std::optional<DownloadProgress> parse_wget(std::string_view line) noexcept {
    if (line.empty()) return std::nullopt;
    if (line[0] == ' ' || is_digit(line[0])) {
        if (auto dots = parse_wget_dots(line)) return dots;
    }
    if (line.find('%') == std::string_view::npos) return std::nullopt;
    return parse_wget_bar(line);
}

}  // namespace detail::boot

class BootLogParser {
public:
    static constexpr int step_count = 7;

    // Feeds one sanitised line; returns true when anything this parser reports changed.
    bool feed(std::string_view line) {
        namespace boot = detail::boot;
        changed_ = false;
        line = boot::trim_blanks(boot::strip_docker_timestamp(line));
        // `wget -q --show-progress` never ends its last dot row, so the next `❯` line can follow it.
        const std::size_t marker = line.find(boot::info_marker);
        if (marker != 0) feed_progress(line.substr(0, marker));
        if (marker != std::string_view::npos) {
            on_info(boot::classify_info(boot::trim_blanks(line.substr(marker + boot::info_marker.size()))));
        }
        return changed_;
    }

    BootPhase phase() const noexcept { return phase_; }
    std::string phase_name() const { return std::string(boot_phase_name(phase_)); }

    // Step X of total_steps(): downloading is 1, windows started is 7; 0 before any phase. A failed
    // boot keeps the step it failed in.
    int step() const noexcept { return step_of(phase_ == BootPhase::failed ? last_active_ : phase_); }
    static int total_steps() noexcept { return step_count; }

    // 0..1 over the whole boot; the highest value reached so far, so it never goes backwards (not
    // across a download retry, nor across a container restart within the same log).
    double progress_fraction() const noexcept { return progress_; }

    // The running download's percentage and wget's estimate of its remaining seconds, while the
    // current (or failed) phase is the download.
    std::optional<double> download_pct() const noexcept { return download_pct_; }
    std::optional<double> download_eta_seconds() const noexcept { return download_eta_; }

    // Human-readable line for the current phase, e.g. `Downloading Windows 11 Enterprise... 52% (28s left)`.
    const std::string& detail() const noexcept { return detail_; }

    // The first `❯ ERROR:` text since the container last made progress; absent unless failed.
    std::optional<std::string> error() const { return error_; }

    // The address the container printed with "Windows started successfully, visit …"; it names the
    // container's side of the port (127.0.0.1:8006), which a caller maps to where it can reach it.
    std::optional<std::string> vnc_hint_url() const { return vnc_hint_; }

    // True once a line only a dockurr/windows container prints has been seen.
    bool is_boot_log() const noexcept { return is_boot_log_; }

    // How many times the container's banner came again after the boot had begun (a restarted
    // container keeps its earlier output in `docker logs`).
    int restarts() const noexcept { return restarts_; }

private:
    static int step_of(BootPhase phase) noexcept {
        switch (phase) {
            case BootPhase::downloading: return 1;
            case BootPhase::extracting: return 2;
            case BootPhase::adding_drivers: return 3;
            case BootPhase::building_image: return 4;
            case BootPhase::creating_disk: return 5;
            case BootPhase::booting: return 6;
            case BootPhase::started: return 7;
            case BootPhase::waiting:
            case BootPhase::failed: return 0;
        }
        return 0;
    }

    void feed_progress(std::string_view line) {
        if (!accepts_download_progress()) return;
        if (const auto progress = detail::boot::parse_wget(detail::boot::trim_blanks(line))) on_download_progress(*progress);
    }

    bool accepts_download_progress() const noexcept {
        // A log picked up in the middle of a download starts with dot rows and no `❯` line.
        return phase_ == BootPhase::downloading || (phase_ == BootPhase::waiting && !begun_);
    }

    void on_info(const detail::boot::InfoLine& info) {
        using Kind = detail::boot::InfoKind;
        if (info.kind != Kind::other) mark_boot_log();
        switch (info.kind) {
            case Kind::error: fail(info.text); break;
            case Kind::banner:
                if (begun_ || phase_ != BootPhase::waiting) restart();
                set_detail(info.text);
                break;
            case Kind::phase: enter(info.phase, info.text); break;
            case Kind::other:
                // e.g. `Verifying downloaded ISO...`, `Detected: Windows 11 Enterprise`
                if (phase_ != BootPhase::waiting && phase_ != BootPhase::failed && phase_ != BootPhase::started) {
                    set_detail(info.text);
                }
                break;
            case Kind::warning:
            case Kind::preamble: break;
        }
    }

    void enter(BootPhase next, std::string_view text) {
        begun_ = true;
        if (error_) {  // the container went on after its error: it was not fatal
            error_.reset();
            changed_ = true;
        }
        if (next != BootPhase::downloading || detail::boot::starts_download_attempt(text)) clear_download();
        set_phase(next);
        if (next == BootPhase::downloading) {
            download_label_ = std::string(text);
            refresh_download_detail();
        } else {
            set_detail(text);
        }
        if (next == BootPhase::started) take_vnc_hint(text);
        raise_progress();
    }

    void on_download_progress(const detail::boot::DownloadProgress& progress) {
        if (phase_ == BootPhase::waiting) {
            begun_ = true;
            set_phase(BootPhase::downloading);
            download_label_ = "Downloading Windows...";
        }
        if (progress.pct != download_pct_) {
            download_pct_ = progress.pct;
            changed_ = true;
        }
        if (progress.eta_seconds != download_eta_) {
            download_eta_ = progress.eta_seconds;
            changed_ = true;
        }
        refresh_download_detail();
        raise_progress();
    }

    void fail(std::string_view message) {
        if (phase_ == BootPhase::failed) return;  // later lines explain the first (e.g. KVM advice)
        set_phase(BootPhase::failed);
        error_ = std::string(message.empty() ? std::string_view("unspecified error") : message);
        set_detail("ERROR: " + *error_);
        changed_ = true;
    }

    void restart() {
        ++restarts_;
        begun_ = false;
        error_.reset();
        clear_download();
        set_phase(BootPhase::waiting);
        changed_ = true;
    }

    void mark_boot_log() {
        if (!is_boot_log_) {
            is_boot_log_ = true;
            changed_ = true;
        }
    }

    void set_phase(BootPhase next) {
        if (next != BootPhase::failed) last_active_ = next;
        if (phase_ != next) {
            phase_ = next;
            changed_ = true;
        }
    }

    void set_detail(std::string_view text) {
        if (detail_ != text) {
            detail_.assign(text.data(), text.size());
            changed_ = true;
        }
    }

    void clear_download() {
        if (download_pct_ || download_eta_) changed_ = true;
        download_pct_.reset();
        download_eta_.reset();
    }

    void refresh_download_detail() {
        std::string text = download_label_;
        if (download_pct_) {
            text += ' ';
            text += std::to_string(static_cast<int>(*download_pct_));
            text += '%';
            if (download_eta_ && *download_eta_ > 0) {
                text += " (" + detail::boot::format_seconds(*download_eta_) + " left)";
            }
        }
        set_detail(text);
    }

    void take_vnc_hint(std::string_view text) {
        const auto url = detail::boot::visit_url(text);
        if (url && vnc_hint_ != *url) {
            vnc_hint_ = std::string(*url);
            changed_ = true;
        }
    }

    void raise_progress() {
        double value = detail::boot::phase_start_fraction(phase_);
        if (phase_ == BootPhase::downloading && download_pct_) {
            value += detail::boot::download_share * (*download_pct_ / 100.0);
        }
        if (value > progress_) {
            progress_ = value;
            changed_ = true;
        }
    }

    BootPhase phase_ = BootPhase::waiting;
    BootPhase last_active_ = BootPhase::waiting;
    bool begun_ = false;  // a phase line (not just the banner) came since the container last started
    bool is_boot_log_ = false;
    bool changed_ = false;
    int restarts_ = 0;
    double progress_ = 0.0;
    std::optional<double> download_pct_;
    std::optional<double> download_eta_;
    std::string download_label_;
    std::string detail_;
    std::optional<std::string> error_;
    std::optional<std::string> vnc_hint_;
};

}  // namespace azops
