// azops_cli/terminal_progress.hpp — the one-line progress report the example programs print.
//
// Owns: rendering a status as one line (operation, step, %, ETA, cost, what is going on), and
// printing it: on a terminal it is redrawn in place (`\r`, the line, clear-to-end) a few times a
// second and cut to the terminal's width; into a pipe or file it is printed as plain lines, at once
// when the operation, phase or state changes and otherwise at most every `plain_every`. Messages
// and echoed command output go above the line without garbling it.
// Thread-safety: every member may be called from any thread; the status source is called on the
// printer's own thread.
// Errors: nothing throws after construction but std::bad_alloc; a closed output is ignored.
#pragma once

#include <azops/log_tail.hpp>
#include <azops/status.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <ctime>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>

#include <sys/ioctl.h>
#include <unistd.h>

namespace azops_cli {

namespace detail {

// `1h02m`, `12m30s`, `45s`.
inline std::string short_duration(double seconds) {
    if (!std::isfinite(seconds) || seconds < 0) seconds = 0;
    const long s = std::lround(seconds);
    char buf[32];
    if (s >= 3600) std::snprintf(buf, sizeof buf, "%ldh%02ldm", s / 3600, (s / 60) % 60);
    else if (s >= 60) std::snprintf(buf, sizeof buf, "%ldm%02lds", s / 60, s % 60);
    else std::snprintf(buf, sizeof buf, "%lds", s);
    return buf;
}

inline std::string dollars(double usd) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "$%.2f", usd);
    return buf;
}

// "2026-11-29T03:38:45Z" as seconds since 1970; nullopt for anything else.
inline std::optional<double> parse_utc(const std::optional<std::string>& text) {
    if (!text || text->size() < 20) return std::nullopt;
    std::tm tm{};
    if (std::sscanf(text->c_str(), "%4d-%2d-%2dT%2d:%2d:%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                    &tm.tm_min, &tm.tm_sec) != 6) {
        return std::nullopt;
    }
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return static_cast<double>(timegm(&tm));
}

// The first `columns` characters of a UTF-8 text (a character never cut in two).
inline std::string first_columns(std::string_view text, std::size_t columns) {
    std::size_t count = 0;
    for (std::size_t i = 0; i < text.size(); ++i) {
        if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80 && count++ == columns) return std::string(text.substr(0, i));
    }
    return std::string(text);
}

inline void write_all(int fd, std::string_view bytes) noexcept {
    while (!bytes.empty()) {
        const ssize_t n = ::write(fd, bytes.data(), bytes.size());
        if (n <= 0) return;
        bytes.remove_prefix(static_cast<std::size_t>(n));
    }
}

}  // namespace detail

// One line for a status: `docker_build 18/21  46%  ETA 12m30s  $0.21 of ~$0.35  RUN pip install …`;
// empty before the task has begun.
inline std::string render_progress_line(const azops::OpsStatus& s) {
    if (s.state == "idle" && s.task.empty()) return {};
    using detail::dollars;
    using detail::short_duration;
    std::string line = s.operation.empty() || s.operation == "idle" ? s.task : s.operation;
    if (s.total_steps > 0) line += " " + std::to_string(s.step) + "/" + std::to_string(s.total_steps);
    if (s.tasks_succeeded && s.tasks_failed) {
        line += "  " + std::to_string(*s.tasks_succeeded) + " passed " + std::to_string(*s.tasks_failed) + " failed";
    }
    const std::string cost = s.cost_usd ? dollars(*s.cost_usd) : std::string("$?");
    if (s.state == "running") {
        line += "  " + std::to_string(static_cast<int>(std::floor(s.progress_pct))) + "%";
        if (s.stalled_seconds) line += "  STALLED " + short_duration(*s.stalled_seconds);
        else line += "  ETA " + (s.eta_seconds ? short_duration(*s.eta_seconds) : std::string("?"));
        line += "  " + cost;
        if (s.projected_cost_usd) line += " of ~" + dollars(*s.projected_cost_usd);
    } else if (!s.state.empty() && s.state != "idle") {
        line += "  " + s.state + " after " + short_duration(s.elapsed_seconds) + "  " + cost;
    }
    if (s.vm_state && *s.vm_state != "running") line += "  VM " + *s.vm_state;
    const auto idle_at = detail::parse_utc(s.idle_deallocate_at);
    const auto now = detail::parse_utc(s.updated_at);
    if (idle_at && now) line += "  deallocates in " + short_duration(*idle_at - *now);
    const std::string& what = !s.error ? (s.detail.empty() ? s.phase : s.detail) : *s.error;
    if (!what.empty()) line += "  " + what;
    return line;
}

struct TerminalProgressOptions {
    int fd = STDERR_FILENO;
    std::optional<bool> redraw;  // redraw in place; default: whether `fd` is a terminal
    std::chrono::milliseconds tick{250};
    std::chrono::seconds plain_every{10};
    std::string prefix;          // before every line, e.g. "setup_waa: "
};

class TerminalProgress {
public:
    using Source = std::function<azops::OpsStatus()>;

    explicit TerminalProgress(Source source, TerminalProgressOptions options = {})
        : source_(std::move(source)),
          options_(std::move(options)),
          redraw_(options_.redraw.value_or(::isatty(options_.fd) == 1)) {}

    ~TerminalProgress() { stop(); }

    TerminalProgress(const TerminalProgress&) = delete;
    TerminalProgress& operator=(const TerminalProgress&) = delete;

    // Draws the line at once, then keeps it current.
    void start() {
        std::lock_guard<std::mutex> lock(mutex_);
        if (thread_.joinable()) return;
        stopping_ = false;
        update_locked(false);
        thread_ = std::thread([this] { loop(); });
    }

    // Prints the final state on a line of its own and stops redrawing.
    void stop() {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            if (!thread_.joinable()) return;
            stopping_ = true;
        }
        wake_.notify_all();
        thread_.join();
        std::lock_guard<std::mutex> lock(mutex_);
        update_locked(true);
        if (redraw_ && !shown_.empty()) detail::write_all(options_.fd, "\n");
        shown_.clear();
    }

    // A line of its own above the progress line (e.g. "dashboard at http://…").
    void message(std::string_view text) {
        std::lock_guard<std::mutex> lock(mutex_);
        above_locked(options_.fd, options_.prefix + std::string(text));
    }

    // A line of the command's output, sanitised, on standard output.
    void echo_output(std::string_view raw_line) {
        std::lock_guard<std::mutex> lock(mutex_);
        above_locked(STDOUT_FILENO, azops::sanitize_line(raw_line));
    }

private:
    void loop() {
        std::unique_lock<std::mutex> lock(mutex_);
        while (!wake_.wait_for(lock, options_.tick, [this] { return stopping_; })) update_locked(false);
    }

    void update_locked(bool final_update) {
        const azops::OpsStatus status = source_();
        const std::string rendered = render_progress_line(status);
        if (rendered.empty()) return;
        const std::string text = options_.prefix + rendered;
        if (redraw_) {
            if (text == shown_) return;
            shown_ = text;
            draw_locked();
            return;
        }
        const std::string key = status.operation + "\n" + status.phase + "\n" + status.state;
        const auto now = std::chrono::steady_clock::now();
        const bool changed = key != printed_key_;
        const bool due = now - printed_at_ >= options_.plain_every && text != shown_;
        if (!changed && !due && !(final_update && text != shown_)) return;
        printed_key_ = key;
        printed_at_ = now;
        shown_ = text;
        detail::write_all(options_.fd, text + "\n");
    }

    void draw_locked() {
        detail::write_all(options_.fd, "\r" + detail::first_columns(shown_, columns() - 1) + "\x1b[K");
    }

    void above_locked(int fd, const std::string& text) {
        if (redraw_ && !shown_.empty()) detail::write_all(options_.fd, "\r\x1b[K");
        detail::write_all(fd, text + "\n");
        if (redraw_ && !shown_.empty()) draw_locked();
    }

    std::size_t columns() const {
        winsize ws{};
        if (::ioctl(options_.fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 10) return ws.ws_col;
        return 100;
    }

    const Source source_;
    const TerminalProgressOptions options_;
    const bool redraw_;
    std::mutex mutex_;
    std::condition_variable wake_;
    bool stopping_ = false;
    std::string shown_;
    std::string printed_key_;
    std::chrono::steady_clock::time_point printed_at_{};
    std::thread thread_;
};

}  // namespace azops_cli
