// azops/tracker.hpp — azops::Tracker, the one object a program talks to.
//
// Owns: the state of one task (operations, phases, steps, log tail, VM, final state), reading each
// operation's output with the matching parser, the task's ETA (this operation's estimate plus what
// history says the planned operations still to come take), its cost by VM state, the history file
// updates of finished operations, the run token and stop requests, and the StatusWriter that
// publishes it all to the status file. Every change is made in memory under one mutex; the file is
// written by the writer's thread, never on the thread that calls `log`.
// Thread-safety: every member function may be called from any thread.
// Errors: the constructor throws std::filesystem::filesystem_error when the status folder cannot be
// created; after that nothing throws into the caller: write failures become the status's `notice`.
#pragma once

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>

#include <azops/cost.hpp>
#include <azops/detail/operation_run.hpp>
#include <azops/history.hpp>
#include <azops/log_tail.hpp>
#include <azops/status.hpp>
#include <azops/status_writer.hpp>

namespace azops {

using WallClock = std::function<std::chrono::system_clock::time_point()>;

// Where hourly rates come from, besides the built-in table. Errors in these files become the
// status's notice (the rate then stays as the table has it), never an exception.
struct CostOptions {
    std::string os = "linux";                       // the VM's OS: linux or windows
    std::vector<std::filesystem::path> price_pages;  // saved Azure Retail Prices API responses
    std::optional<std::filesystem::path> rate_file;  // {"rates": [{"vm_size": ..., "usd_per_hour": ...}]}
    std::optional<double> rate_override;             // one rate for whatever size, $/h
};

struct TrackerOptions {
    std::filesystem::path status_file = "benchmark_results/azure_ops_status.json";
    // Read at construction for ETAs; every operation that ends well records its durations there
    // under its own name (benchmark tasks under "benchmark_per_task"). None: no history.
    std::optional<std::filesystem::path> history_file;
    // The task's operations in order: those not started yet add their history average to the ETA
    // and weigh the task's progress.
    std::vector<std::string> planned_operations;
    CostOptions cost;
    // How estimates trust history and when silence is a stall: `eta.stall_min_seconds` (5 min by
    // default) is the least silence that sets `stalled_seconds`.
    EtaOptions eta;
    WallClock clock;                                // defaults to detail::coarse_now (the wall clock to a tick)
    std::size_t log_lines = 50;                     // lines kept in `log_tail`
    std::chrono::milliseconds min_write_interval{100};
    std::chrono::milliseconds heartbeat{2000};
    std::chrono::milliseconds stop_request_poll{250};  // how often `<status file>.cancel` is looked for
};

// What the program knows of its VM; unset fields keep their previous value.
struct VmInfo {
    std::optional<std::string> name;
    std::optional<std::string> size;
    std::optional<std::string> region;
    std::optional<std::string> ip;
    std::optional<std::string> state;
    std::optional<std::string> vnc_url;
};

// The last status document the writer produced, for servers that push it to viewers.
struct Published {
    std::uint64_t version = 0;
    std::string json;
};

namespace detail {

inline std::string random_token() {
    std::random_device entropy;  // /dev/urandom (getrandom) on Linux
    static constexpr std::string_view hex = "0123456789abcdef";
    std::string token;
    for (int i = 0; i < 6; ++i) {  // 192 bits
        const std::uint32_t word = entropy();
        for (int shift = 0; shift < 32; shift += 8) {
            const auto byte = static_cast<unsigned>((word >> shift) & 0xFFU);
            token += hex[byte >> 4];
            token += hex[byte & 0xFU];
        }
    }
    return token;
}

inline bool constant_time_equal(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) return false;
    unsigned char diff = 0;
    for (std::size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
    return diff == 0;
}

inline double seconds_between(std::chrono::system_clock::time_point from, std::chrono::system_clock::time_point to) {
    return std::max(0.0, std::chrono::duration<double>(to - from).count());
}

// The wall clock to a few milliseconds (one kernel tick), read without a full timer read: the tracker
// stamps every logged line, and on a VM's clock source `system_clock::now()` alone can cost a fifth
// of a line's whole budget. Seconds-scale durations, ETAs and costs lose nothing to the tick.
inline std::chrono::system_clock::time_point coarse_now() noexcept {
#if defined(CLOCK_REALTIME_COARSE)
    timespec ts{};
    if (::clock_gettime(CLOCK_REALTIME_COARSE, &ts) == 0) {
        return std::chrono::system_clock::time_point(std::chrono::duration_cast<std::chrono::system_clock::duration>(
            std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec)));
    }
#endif
    return std::chrono::system_clock::now();
}

}  // namespace detail

class Tracker {
public:
    using Clock = std::chrono::system_clock;

    explicit Tracker(TrackerOptions options = {})
        : options_(std::move(options)),
          tail_(options_.log_lines),
          token_(detail::random_token()) {
        if (!options_.clock) options_.clock = [] { return detail::coarse_now(); };
        epoch_ = options_.clock();
        status_.status_file = absolute_path(options_.status_file);
        status_.started_at = iso8601_utc(epoch_);
        status_.state = "idle";
        load_history();
        load_rates();
        // A tracker killed while writing its token, or a server killed while asking for a stop,
        // leaves temporary files beside the status file; the status writer removes only its own.
        remove_stale_temp_files(token_file());
        remove_stale_temp_files(cancel_request_file());
        writer_ = std::make_unique<StatusWriter>(
            StatusWriterOptions{options_.status_file, options_.min_write_interval, options_.heartbeat,
                                options_.stop_request_poll},
            [this] { return render(); }, [this] { look_for_stop_request(); },
            [this](const AtomicWriteResult& r) { note_write_problem(r); });
        render();  // published at once: a server started right after this has a status to serve
    }

    Tracker(const Tracker&) = delete;
    Tracker& operator=(const Tracker&) = delete;

    // A task still running when its tracker goes away did not finish: say so in the final write.
    ~Tracker() {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            if (status_.state == "running") {
                finish_locked("failed", std::string("the program ended before the task finished"));
            }
        }
        writer_.reset();
        remove_run_files();
    }

    // Starts the task: resets progress, writes the run token beside the status file.
    void begin(std::string task) {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            const auto now = options_.clock();
            started_ = now;
            status_.task = std::move(task);
            status_.state = "running";
            status_.started_at = iso8601_utc(now);
            status_.error.reset();
            status_.timeline.clear();
            status_.progress_pct = 0.0;
            status_.step = status_.total_steps = 0;
            status_.cancellable = static_cast<bool>(cancel_handler_);
            run_.reset();
            if (!vm_state_known_) cost_.set_state(VmState::unknown, seconds_at(now));
        }
        write_token_file();
        writer_->set_heartbeat(true);
        changed();
    }

    // Enters a new operation: the previous one ends succeeded (and is recorded in the history
    // file), and a new timeline entry opens. `total_steps` announces its steps; for an operation
    // read from its output (a boot log's 7 steps) a larger number keeps the rest for the program's
    // own later steps (`step(8, 8)`: waiting for a server), so the output alone never reaches 100 %.
    void operation(std::string name, int total_steps = 0) {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            const auto now = options_.clock();
            end_operation_locked(now, "succeeded");
            run_.emplace(name, history_ ? &*history_ : nullptr, seconds_at(now), options_.eta, total_steps);
            status_.operation = name;
            status_.phase.clear();
            status_.detail.clear();
            status_.step = 0;
            status_.total_steps = std::max(0, total_steps);
            status_.timeline.push_back(TimelineEntry{std::move(name), "running", iso8601_utc(now), std::nullopt, 0.0});
            operation_started_ = now;
            refresh_progress_locked();
        }
        changed();
    }

    void phase(std::string_view phase, std::string_view detail = {}) {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            status_.phase = sanitize_line(phase);
            if (!detail.empty()) status_.detail = sanitize_line(detail);
            if (run_) run_->set_phase(status_.phase);
        }
        changed();
    }

    // Step `step` of `total` inside the current operation (1-based).
    void step(int step, int total, std::string_view detail = {}) {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            status_.total_steps = std::max(0, total);
            status_.step = std::clamp(step, 0, std::max(status_.total_steps, step));
            if (!detail.empty()) status_.detail = sanitize_line(detail);
            current_run_locked().step_started(status_.step, status_.total_steps, now_seconds());
            refresh_progress_locked();
        }
        changed();
    }

    // Progress of the current operation, 0–100 (clamped; it never goes backwards). The task's
    // `progress_pct` weighs it with the planned operations.
    void progress(double pct) {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            current_run_locked().progress(pct / 100.0, now_seconds());
            refresh_progress_locked();
        }
        changed();
    }

    // Results of a benchmark's tasks so far, for a program that reads them itself (a benchmark
    // operation's WAA output fills them on its own).
    void task_results(int succeeded, int failed) {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            status_.tasks_succeeded = std::max(0, succeeded);
            status_.tasks_failed = std::max(0, failed);
        }
        changed();
    }

    void detail(std::string_view text) {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            status_.detail = sanitize_line(text);
        }
        changed();
    }

    // One raw output line (without '\n'), of which `cut_bytes` were already dropped upstream
    // (LineSplitter's bound). Sanitised here and read by the current operation's parser; the file
    // is written later by the writer's thread. It ends a line being redrawn (see `log_redraw`).
    void log(std::string_view raw_line, std::size_t cut_bytes = 0) {
        take_raw(raw_line, cut_bytes, &Tracker::take_line_locked);
    }

    // A line that has not ended yet, as a terminal shows it now: a `\r` progress bar (wget's, pip's)
    // may take minutes to end. It shows as the last line of `log_tail` (with `log_partial` set), each
    // drawing replacing the one before, and the parser reads each drawing; the next line logged is
    // taken as its end and replaces it.
    void log_redraw(std::string_view raw_line, std::size_t cut_bytes = 0) {
        take_raw(raw_line, cut_bytes, &Tracker::take_drawing_locked);
    }

    // A chunk of a command's raw output, as one read of its pipe returned it: `splitter` (the
    // caller's, one per output stream) cuts it into lines, and each complete line is logged as by
    // `log` and a redrawn unterminated one as by `log_redraw`, all under one lock and one clock
    // reading, since they arrived at the same moment. The stream's last, unterminated line is the
    // caller's to log after the end
    // (`splitter.finish([&](std::string_view l, std::size_t cut) { tracker.log(l, cut); })`).
    void log_chunk(std::string_view bytes, LineSplitter& splitter) {
        std::string scratch;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            const double t = now_seconds();
            splitter.feed(
                bytes,
                [&](std::string_view raw_line, std::size_t cut_bytes) {
                    take_line_locked(sanitize_line_into(raw_line, scratch, cut_bytes), t);
                },
                [&](std::string_view raw_line, std::size_t cut_bytes) {
                    take_drawing_locked(sanitize_line_into(raw_line, scratch, cut_bytes), t);
                });
        }
        writer_->notify();
    }

    // VM facts as they become known; a `state` change moves the billing (DESIGN.md's rule). After
    // the task ended, a VM known to be allocated still costs money: the cost goes on (and the file
    // keeps its heartbeat) until the VM is said to be deallocated.
    void set_vm(const VmInfo& vm) {
        bool heartbeat = false;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            const auto assign = [](std::optional<std::string>& field, const std::optional<std::string>& value) {
                if (value) field = value->empty() ? std::nullopt : std::optional<std::string>(sanitize_line(*value));
            };
            assign(status_.vm_name, vm.name);
            assign(status_.vm_size, vm.size);
            assign(status_.region, vm.region);
            assign(status_.vm_ip, vm.ip);
            assign(status_.vm_state, vm.state);
            assign(status_.vnc_url, vm.vnc_url);
            if (vm.size || vm.region) requote_rate_locked();
            if (vm.state) {
                vm_state_known_ = parse_vm_state(*vm.state) != VmState::unknown;
                cost_.set_state(parse_vm_state(*vm.state), now_seconds());
            }
            heartbeat = status_.state == "running" || billed_after_end_locked();
        }
        writer_->set_heartbeat(heartbeat);
        changed();
    }

    void notice(std::optional<std::string> text) {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            status_.notice = text ? std::optional<std::string>(sanitize_line(*text)) : std::nullopt;
        }
        changed();
    }

    // When an idle VM will be deallocated (none: no countdown).
    void set_idle_deallocate_at(std::optional<Clock::time_point> when) {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            status_.idle_deallocate_at = when ? std::optional<std::string>(iso8601_utc(*when)) : std::nullopt;
        }
        changed();
    }

    // The task ended well — unless the output said otherwise (a docker build that failed inside a
    // command that still exited 0): then it ends failed with the output's own error.
    void succeed() {
        std::optional<std::string> output_error;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            if (run_ && run_->output_error()) output_error = run_->output_error();
        }
        if (output_error) finish("failed", std::move(output_error));
        else finish("succeeded", std::nullopt);
    }
    void fail(std::string error) { finish("failed", std::move(error)); }
    void cancel(std::string reason = "stopped on request") { finish("cancelled", std::move(reason)); }

    // Who to call when a viewer asks the task to stop (the page's Stop button, a `.cancel` file).
    // The handler runs on the thread that received the request and must only start the stop.
    void on_cancel(std::function<void()> handler) {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            cancel_handler_ = std::move(handler);
            status_.cancellable = cancel_handler_ && status_.state == "running";
        }
        changed();
    }

    // Asks the task to stop; false when no stop can be honoured now.
    bool request_cancel() {
        std::function<void()> handler;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            if (!status_.cancellable || !cancel_handler_) return false;
            handler = cancel_handler_;
            status_.notice = "stop requested";
        }
        changed();
        handler();
        return true;
    }

    bool cancellable() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return status_.cancellable;
    }

    const std::string& token() const noexcept { return token_; }

    OpsStatus snapshot() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return snapshot_locked();
    }

    Published published() const {
        std::lock_guard<std::mutex> lock(publish_mutex_);
        return published_;
    }

    // Waits until a document newer than `seen` is published; false on timeout.
    bool wait_for_publish(std::uint64_t seen, std::chrono::milliseconds timeout) const {
        std::unique_lock<std::mutex> lock(publish_mutex_);
        return published_cv_.wait_for(lock, timeout, [&] { return published_.version != seen; });
    }

    // Writes the current status now, on this thread.
    void flush() { writer_->flush(); }

    StatusWriterStats writer_stats() const { return writer_->stats(); }

    const std::filesystem::path& status_file() const noexcept { return options_.status_file; }
    std::filesystem::path token_file() const { return sidecar(".token"); }
    std::filesystem::path cancel_request_file() const { return sidecar(".cancel"); }

private:
    static std::string absolute_path(const std::filesystem::path& p) {
        std::error_code ec;
        const auto abs = std::filesystem::absolute(p, ec);
        return (ec ? p : abs.lexically_normal()).string();
    }

    std::filesystem::path sidecar(const char* suffix) const {
        std::filesystem::path p = options_.status_file;
        p += suffix;
        return p;
    }

    void changed() { writer_->notify(); }

    // Seconds on the task's clock since this tracker was made: the time base of ETA and billing.
    double seconds_at(Clock::time_point t) const { return std::chrono::duration<double>(t - epoch_).count(); }
    double now_seconds() const { return seconds_at(options_.clock()); }

    void load_history() {
        if (!options_.history_file) return;
        history_ = History::load(*options_.history_file);
        if (!history_->warnings().empty()) status_.notice = sanitize_line(history_->warnings().front());
    }

    void load_rates() {
        rates_ = RateTable::built_in();
        try {
            if (!options_.cost.price_pages.empty()) rates_.load_retail_prices(options_.cost.price_pages);
            if (options_.cost.rate_file) rates_.load_override_file(*options_.cost.rate_file);
        } catch (const std::exception& e) {
            status_.notice = sanitize_line(std::string("prices not loaded: ") + e.what());
        }
        os_ = parse_os_type(options_.cost.os).value_or(OsType::linux_os);
        requote_rate_locked();
    }

    void requote_rate_locked() {
        const std::string size = status_.vm_size.value_or("");
        const std::string region = status_.region.value_or(std::string(default_region));
        cost_.set_rate(rates_.quote(size, os_, region));
        if (options_.cost.rate_override) cost_.set_rate_override(*options_.cost.rate_override, "rate given by hand");
    }

    // Without an operation, steps and progress belong to one named after the task.
    detail::OperationRun& current_run_locked() {
        if (!run_) run_.emplace(status_.operation, history_ ? &*history_ : nullptr, now_seconds(), options_.eta);
        return *run_;
    }

    // Sanitises a raw line outside the lock, then hands it to `take` under it.
    void take_raw(std::string_view raw_line, std::size_t cut_bytes, void (Tracker::*take)(std::string_view, double)) {
        std::string scratch;
        const std::string_view clean = sanitize_line_into(raw_line, scratch, cut_bytes);
        {
            std::lock_guard<std::mutex> lock(mutex_);
            (this->*take)(clean, now_seconds());
        }
        writer_->notify();
    }

    // A sanitised line that ended: it replaces the drawing of itself, if one shows.
    void take_line_locked(std::string_view clean, double t) {
        if (!drawing_) {
            read_line_locked(clean, t);
            tail_.push(clean);
            return;
        }
        drawing_ = false;
        if (clean != tail_.last()) read_line_locked(clean, t);  // the parser has read its last drawing
        tail_.replace_last(clean);
    }

    // A sanitised drawing of a line that has not ended.
    void take_drawing_locked(std::string_view clean, double t) {
        if (clean.empty() || (drawing_ && clean == tail_.last())) return;
        read_line_locked(clean, t);
        if (drawing_) {
            tail_.replace_last(clean);
        } else {
            tail_.push(clean);
            drawing_ = true;
        }
    }

    void read_line_locked(std::string_view clean, double t) {
        if (run_ && run_->feed(clean, t)) take_operation_state_locked();
    }

    // The parser moved: copy where the operation stands into the status.
    void take_operation_state_locked() {
        const detail::OperationRun& run = *run_;
        if (run.name() != status_.operation) {
            status_.operation = run.name();
            if (!status_.timeline.empty() && !status_.timeline.back().ended_at) status_.timeline.back().name = run.name();
        }
        status_.step = run.step();
        status_.total_steps = run.total_steps();
        status_.phase = run.phase();
        status_.detail = run.detail();
        if (const auto results = run.task_results()) {
            status_.tasks_succeeded = results->first;
            status_.tasks_failed = results->second;
        }
        refresh_progress_locked();
    }

    // The planned operations' weights: their history averages when all are known, else equal.
    std::vector<double> planned_weights_locked() const {
        std::vector<double> weights;
        for (const auto& op : options_.planned_operations) {
            const auto past = history_ ? history_->operation(op) : std::nullopt;
            if (!past || !past->avg_seconds || *past->avg_seconds <= 0) {
                weights.assign(options_.planned_operations.size(), 1.0);
                return weights;
            }
            weights.push_back(*past->avg_seconds);
        }
        return weights;
    }

    // The task's progress: the current operation's fraction, weighted among the planned ones.
    void refresh_progress_locked() {
        const double fraction = run_ ? run_->fraction() : 0.0;
        double pct = 100.0 * fraction;
        const auto& plan = options_.planned_operations;
        const auto at = run_ ? std::find(plan.begin(), plan.end(), run_->name()) : plan.end();
        if (at != plan.end()) {
            const std::vector<double> weights = planned_weights_locked();
            const auto index = static_cast<std::size_t>(at - plan.begin());
            double done = 0;
            double total = 0;
            for (std::size_t i = 0; i < weights.size(); ++i) {
                total += weights[i];
                if (i < index) done += weights[i];
            }
            pct = 100.0 * (done + weights[index] * fraction) / total;
        }
        status_.progress_pct = std::max(status_.progress_pct, std::clamp(pct, 0.0, 100.0));
    }

    // What history says the planned operations after the current one take, in seconds.
    double rest_of_plan_seconds_locked() const {
        const auto& plan = options_.planned_operations;
        auto at = run_ ? std::find(plan.begin(), plan.end(), run_->name()) : plan.begin();
        if (at != plan.end() && run_) ++at;
        double rest = 0;
        for (; at != plan.end(); ++at) {
            const auto past = history_ ? history_->operation(*at) : std::nullopt;
            if (past && past->avg_seconds) rest += *past->avg_seconds;
        }
        return rest;
    }

    void end_operation_locked(Clock::time_point now, const char* state) {
        if (status_.timeline.empty() || status_.timeline.back().ended_at) return;
        auto& entry = status_.timeline.back();
        entry.state = state;
        entry.ended_at = iso8601_utc(now);
        entry.duration_seconds = detail::seconds_between(operation_started_, now);
        if (run_ && std::string_view(state) == "succeeded") {
            if (options_.history_file) {
                if (auto problem = run_->record(*options_.history_file, seconds_at(now))) status_.notice = *problem;
            }
        }
    }

    void finish(const char* state, std::optional<std::string> error) {
        bool heartbeat = false;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            finish_locked(state, std::move(error));
            heartbeat = billed_after_end_locked();
        }
        writer_->set_heartbeat(heartbeat);
        writer_->flush();
    }

    // The task has ended, but its VM is known to be allocated: it is still billed.
    bool billed_after_end_locked() const {
        return finished_ && vm_state_known_ && is_billed(cost_.state());
    }

    void finish_locked(const char* state, std::optional<std::string> error) {
        const auto now = options_.clock();
        end_operation_locked(now, state);
        status_.state = state;
        status_.cancellable = false;
        status_.error = error ? std::optional<std::string>(sanitize_line(*error)) : std::nullopt;
        if (status_.state == "succeeded") status_.progress_pct = 100.0;
        finished_ = now;
    }

    void fill_estimates_locked(OpsStatus& s, double t) const {
        s.rate_known = cost_.rate_known();
        s.rate_source = cost_.rate_known() ? cost_.rate_source() : cost_.rate_message();
        s.hourly_rate_usd = cost_.hourly_rate();
        s.billing_assumed = cost_.billing_assumed();
        s.cost_usd = cost_.cost_until(t);
        if (s.state != "running" || !run_) return;
        const EtaEstimate estimate = run_->estimate(t);
        const double rest = rest_of_plan_seconds_locked();
        if (estimate.seconds) {
            s.eta_seconds = *estimate.seconds + rest;
            s.eta_source = estimate.source;
            if (estimate.range) {
                s.eta_low_seconds = estimate.range->low + rest;
                s.eta_high_seconds = estimate.range->high + rest;
            }
        }
        s.projected_cost_usd = cost_.projected_cost(t, s.eta_seconds);
        s.stalled_seconds = run_->stalled_seconds(t);
        if (s.stalled_seconds) s.stalled_cost_usd = cost_.cost_between(t - *s.stalled_seconds, t);
    }

    OpsStatus snapshot_locked() const {
        OpsStatus s = status_;
        if (write_problem_) s.notice = write_problem_;  // while the file cannot be written, that comes first
        const auto now = options_.clock();
        s.log_tail = tail_.lines();
        s.log_partial = drawing_;
        s.updated_at = iso8601_utc(now);
        s.elapsed_seconds = started_ ? detail::seconds_between(*started_, finished_.value_or(now)) : 0.0;
        if (!s.timeline.empty() && !s.timeline.back().ended_at) {
            s.timeline.back().duration_seconds = detail::seconds_between(operation_started_, now);
        }
        // A VM whose state is known is billed by its state, also after the task; an assumed one only during it.
        fill_estimates_locked(s, seconds_at(vm_state_known_ ? now : finished_.value_or(now)));
        return s;
    }

    std::string render() {
        std::string text;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            text = to_json_text(snapshot_locked());
        }
        {
            std::lock_guard<std::mutex> lock(publish_mutex_);
            if (text != published_.json) {
                published_.json = text;
                ++published_.version;
            }
        }
        published_cv_.notify_all();
        return text;
    }

    void write_token_file() {
        const auto result = write_file_atomically(token_file(), token_ + "\n", AtomicWriteOptions{false, 0600});
        if (!result.ok) notice(result.error);  // lasting: without the token no other process can ask for a stop
    }

    // Not const, though it changes no member: the files are the run's, and so part of its state.
    void remove_run_files() noexcept {  // NOLINT(readability-make-member-function-const)
        std::error_code ec;
        std::filesystem::remove(token_file(), ec);
        std::filesystem::remove(cancel_request_file(), ec);
    }

    // A server in another process asks for a stop by leaving `<status file>.cancel` with the token.
    void look_for_stop_request() {
        std::ifstream in(cancel_request_file());
        if (!in) return;
        std::string presented;
        std::getline(in, presented);
        in.close();
        std::error_code ec;
        std::filesystem::remove(cancel_request_file(), ec);
        if (detail::constant_time_equal(presented, token_)) {
            if (!request_cancel()) notice(std::string("a stop was requested, but the task cannot be stopped now"));
        } else {
            notice(std::string("ignored a stop request that did not carry this run's token"));
        }
    }

    // Kept apart from other notices: a write problem hides them only while it lasts; once the file
    // can be written again (the writer says so with an `ok` result and no error) they show again.
    void note_write_problem(const AtomicWriteResult& result) {
        std::lock_guard<std::mutex> lock(mutex_);
        if (result.error.empty()) write_problem_.reset();
        else write_problem_ = sanitize_line(result.error);
    }

    TrackerOptions options_;
    mutable std::mutex mutex_;  // guards everything below up to publish_mutex_
    OpsStatus status_;
    LogTail tail_;
    bool drawing_ = false;  // the tail's last line is a drawing of a line that has not ended (the parser read it)
    Clock::time_point epoch_{};
    std::optional<Clock::time_point> started_;
    std::optional<Clock::time_point> finished_;
    Clock::time_point operation_started_{};
    std::optional<History> history_;
    std::optional<detail::OperationRun> run_;
    RateTable rates_;
    OsType os_ = OsType::linux_os;
    CostModel cost_;
    bool vm_state_known_ = false;
    std::function<void()> cancel_handler_;
    std::optional<std::string> write_problem_;  // why the status file cannot be written as it should
    const std::string token_;

    mutable std::mutex publish_mutex_;
    mutable std::condition_variable published_cv_;
    Published published_;

    std::unique_ptr<StatusWriter> writer_;  // last: its thread calls back into the members above
};

}  // namespace azops
