// azops/waa_parser.hpp — the Windows Agent Arena benchmark log as task K of N.
//
// Owns: WaaLogParser, fed one sanitised line at a time (see log_tail.hpp). It reads what WAA's run.py
// and lib_run_single.py print — the `Left tasks:` block, `[Domain]: …`, `[Example ID]: …`, `Step N: …`,
// `Result: x.xx`, `Finished domain/id`, `Exception in domain/id: …`, `Average score: …` — with or
// without the logger's `[2026-01-28 22:55:15,221 INFO run/262-MainProcess] ` prefix, among lines from
// other loggers, and reports task K of N, the current domain, task and agent step, successes, failures,
// the average score, the error that ended the run, and task events a tracker can time.
// Thread-safety: a plain value; the owner guards it. Errors: none — every line is accepted, lines the
// parser does not know leave its state alone; nothing throws but std::bad_alloc.
#pragma once

#include <array>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <utility>
#include <vector>

#include <azops/detail/text.hpp>

namespace azops {

enum class WaaEventKind { task_started, task_finished, benchmark_finished };

inline std::string_view waa_event_kind_name(WaaEventKind kind) noexcept {
    switch (kind) {
        case WaaEventKind::task_started: return "task_started";
        case WaaEventKind::task_finished: return "task_finished";
        case WaaEventKind::benchmark_finished: return "benchmark_finished";
    }
    return "task_started";
}

struct WaaEvent {
    WaaEventKind kind = WaaEventKind::task_started;
    int task_index = 0;   // K, counting distinct tasks from 1; 0 for benchmark_finished
    int total_tasks = 0;  // N when the event happened; 0 while unknown
    std::string domain;
    std::string task_id;                  // empty for a Result whose task start was not in the log
    std::optional<double> result;         // task_finished: the evaluator's score, absent if none was printed
    bool success = false;                 // task_finished: result > 0
    bool rerun = false;                   // the task had already finished earlier in this log
    std::optional<std::string> error;     // task_finished: the exception that ended the task
    std::optional<double> average_score;  // benchmark_finished
    std::string log_time;                 // `2026-01-28 22:55:15,221` of the latest log record, or empty
    // The same instant as seconds since 1970, reading the printed local time as UTC: exact for
    // differences between events, which is what timing a task needs.
    std::optional<double> log_seconds;
};

namespace detail::waa {

using text::is_digit;
using text::starts_with;
using text::trim_blanks;
using text::trim_end_blanks;

// The whole of `s` as a finite number (`0.00`, `0.2`, `1e-05`), locale-independent.
inline std::optional<double> parse_number(std::string_view s) noexcept {
    s = trim_blanks(s);
    if (s.empty() || !(is_digit(s[0]) || s[0] == '-' || s[0] == '.')) return std::nullopt;
    double value = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
    if (ec != std::errc() || end != s.data() + s.size() || !std::isfinite(value)) return std::nullopt;
    return value;
}

// A non-negative count of at most nine digits (the whole of `s`).
inline std::optional<int> parse_count(std::string_view s) noexcept {
    if (s.empty() || s.size() > 9) return std::nullopt;
    int value = 0;
    for (const char c : s) {
        if (!is_digit(c)) return std::nullopt;
        value = value * 10 + (c - '0');
    }
    return value;
}

// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil).
inline std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) noexcept {
    if (m <= 2) --y;
    const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
    const auto yoe = static_cast<unsigned>(y - era * 400);
    const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

struct LogPrefix {
    std::string_view time;   // `2026-01-28 22:55:15,221`
    std::string_view level;  // `INFO`
    std::string_view message;
    double seconds = 0;
};

// Python logging's asctime, `YYYY-MM-DD HH:MM:SS,mmm`, as seconds since 1970 read as UTC.
inline std::optional<double> parse_asctime(std::string_view t) noexcept {
    if (t.size() != 23) return std::nullopt;
    static constexpr std::string_view shape = "dddd-dd-dd dd:dd:dd,ddd";
    for (std::size_t i = 0; i < shape.size(); ++i) {
        if (shape[i] == 'd' ? !is_digit(t[i]) : t[i] != shape[i]) return std::nullopt;
    }
    const auto num = [&](std::size_t at, std::size_t len) {
        int v = 0;
        for (std::size_t i = at; i < at + len; ++i) v = v * 10 + (t[i] - '0');
        return v;
    };
    const int month = num(5, 2);
    const int day = num(8, 2);
    const int hour = num(11, 2);
    const int minute = num(14, 2);
    const int second = num(17, 2);
    if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) return std::nullopt;
    const std::int64_t days = days_from_civil(num(0, 4), static_cast<unsigned>(month), static_cast<unsigned>(day));
    return static_cast<double>(days * 86400 + std::int64_t{hour} * 3600 + std::int64_t{minute} * 60 + second) +
           num(20, 3) / 1000.0;
}

// WAA's logger prefix: `[<asctime> <LEVEL> <module>/<lineno>-<process>] <message>`.
inline std::optional<LogPrefix> split_prefix(std::string_view line) noexcept {
    if (line.size() < 26 || line[0] != '[' || !is_digit(line[1]) || line[24] != ' ') return std::nullopt;
    const auto seconds = parse_asctime(line.substr(1, 23));
    if (!seconds) return std::nullopt;
    const std::size_t close = line.substr(0, 200).find(']', 25);
    if (close == std::string_view::npos) return std::nullopt;
    LogPrefix prefix;
    prefix.time = line.substr(1, 23);
    prefix.seconds = *seconds;
    const std::string_view header = line.substr(25, close - 25);
    prefix.level = header.substr(0, header.find(' '));
    prefix.message = line.substr(close + 1);
    if (!prefix.message.empty() && prefix.message.front() == ' ') prefix.message.remove_prefix(1);
    return prefix;
}

// The prefix at the start of the line, or after text glued in front of it: tqdm draws its bars on
// stderr with `\r` and no newline, so in a merged stream a log record can follow a bar on one line.
inline std::optional<LogPrefix> find_prefix(std::string_view line) noexcept {
    for (std::size_t at = line.find('['); at != std::string_view::npos; at = line.find('[', at + 1)) {
        if (auto prefix = split_prefix(line.substr(at))) return prefix;
    }
    return std::nullopt;
}

// One line of the `Left tasks:` block: `chrome: 17`.
inline std::optional<int> domain_count(std::string_view line) noexcept {
    const std::size_t colon = line.find(": ");
    if (colon == 0 || colon == std::string_view::npos) return std::nullopt;
    for (std::size_t i = 0; i < colon; ++i) {
        const char c = line[i];
        const bool name_char = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '_' || c == '-';
        if (!name_char) return std::nullopt;
    }
    return parse_count(line.substr(colon + 2));
}

// `Worker 0 is doing tasks: [('chrome', '<id>'), ...]`: the number of tasks, if the list is whole
// (a list longer than a sanitised line's limit arrives cut and cannot be counted).
inline std::optional<int> worker_task_count(std::string_view message) noexcept {
    const std::size_t open = message.find(" is doing tasks: [");
    if (open == std::string_view::npos || message.back() != ']') return std::nullopt;
    if (message.find("\xE2\x80\xA6[cut ") != std::string_view::npos) return std::nullopt;
    int tuples = 0;
    for (std::size_t i = open; i < message.size(); ++i) {
        if (message[i] == '(') ++tuples;
    }
    return tuples;
}

// `domain/id` → (domain, id), both non-empty and without spaces.
inline std::optional<std::pair<std::string_view, std::string_view>> domain_and_id(std::string_view s) noexcept {
    const std::size_t slash = s.find('/');
    if (slash == 0 || slash == std::string_view::npos || slash + 1 >= s.size()) return std::nullopt;
    const std::string_view domain = s.substr(0, slash);
    const std::string_view id = s.substr(slash + 1);
    if (domain.find(' ') != std::string_view::npos || id.find(' ') != std::string_view::npos) return std::nullopt;
    return std::make_pair(domain, id);
}

// At most `max_bytes` of `s`, cut on a UTF-8 character boundary, marked with an ellipsis when cut.
inline std::string clip(std::string_view s, std::size_t max_bytes) {
    if (s.size() <= max_bytes) return std::string(s);
    std::size_t end = max_bytes;
    while (end > 0 && (static_cast<unsigned char>(s[end]) & 0xC0) == 0x80) --end;
    return std::string(s.substr(0, end)) + "\xE2\x80\xA6";
}

inline std::string format_score(double v) {
    std::array<char, 32> buf;
    const auto [end, ec] = std::to_chars(buf.data(), buf.data() + buf.size(), v, std::chars_format::fixed, 2);
    return ec == std::errc() ? std::string(buf.data(), end) : std::string("?");
}

}  // namespace detail::waa

class WaaLogParser {
public:
    // Events waiting for take_events() beyond this many drop the oldest: a caller that never takes
    // them must not grow without bound.
    static constexpr std::size_t max_pending_events = 10000;
    // Distinct task ids remembered for re-run detection; WAA has 154 tasks, so this only bounds garbage.
    static constexpr std::size_t max_tracked_tasks = 100000;

    // Feeds one sanitised line; returns true when anything this parser reports changed.
    bool feed(std::string_view line) {
        namespace waa = detail::waa;
        changed_ = false;
        line = waa::trim_end_blanks(line);  // leading blanks mark a traceback's frames
        const auto prefix = waa::find_prefix(line);
        if (prefix) {
            if (log_time_ != prefix->time) log_time_.assign(prefix->time.data(), prefix->time.size());
            log_seconds_ = prefix->seconds;
            if (traceback_ == Traceback::logged || traceback_ == Traceback::of_task) traceback_ = Traceback::none;
        }
        const std::string_view message = prefix ? prefix->message : line;

        if (in_left_block_) {
            if (!prefix) {
                if (const auto count = waa::domain_count(message)) {
                    left_sum_ = cap_add(left_sum_, *count);
                    set_total(cap_add(block_base_, left_sum_));
                    return changed_;
                }
            }
            end_left_block();
        }
        if (traceback_ != Traceback::none && !prefix && continue_traceback(message)) return changed_;

        // A task's exception message may run over several lines before WAA logs its traceback.
        const bool after_task_exception = after_task_exception_;
        if (prefix) after_task_exception_ = false;
        on_message(message, prefix ? prefix->level : std::string_view(), prefix.has_value(), after_task_exception);
        return changed_;
    }

    // Tasks finished so far (each distinct task once, however often it ran).
    int tasks_done() const noexcept { return done_; }
    // N from the `Left tasks:` block (or the worker's own task list), plus the tasks done before a
    // restarted run.py printed its block, each distinct task once; 0 while unknown.
    int total_tasks() const noexcept { return total_; }
    const std::string& current_domain() const noexcept { return domain_; }
    const std::string& current_task_id() const noexcept { return current_id_; }
    // K of the current task (1-based), 0 before the first.
    int current_task_index() const noexcept { return current_index_; }
    const std::string& current_instruction() const noexcept { return instruction_; }
    // The agent's latest `Step N:` in the current task; 0 before its first step.
    int agent_step() const noexcept { return agent_step_; }
    // Finished tasks whose result was above 0, and the others (no result, or an exception, counts as
    // a failure); successes() + failures() == tasks_done().
    int successes() const noexcept { return successes_; }
    int failures() const noexcept { return failures_; }
    std::optional<double> average_score() const noexcept { return average_; }
    std::optional<double> last_result() const noexcept { return last_result_; }
    // The latest error with no benchmark progress after it: an uncaught traceback's exception line, an
    // ERROR line, an interruption. A task's own exception is a failed task, not this.
    std::optional<std::string> error() const { return error_; }
    bool is_finished() const noexcept { return stage_ == Stage::finished; }
    // True once a line only WAA prints has been seen.
    bool is_waa_log() const noexcept { return is_waa_log_; }

    // `waiting`, `waiting_for_server`, `starting_benchmark`, `running_task_K`, `finished`, `failed`.
    std::string phase_name() const {
        if (error_) return "failed";
        switch (stage_) {
            case Stage::waiting: return "waiting";
            case Stage::waiting_for_server: return "waiting_for_server";
            case Stage::starting: return "starting_benchmark";
            case Stage::running:
                return current_index_ > 0 ? "running_task_" + std::to_string(current_index_) : "running_tasks";
            case Stage::finished: return "finished";
        }
        return "waiting";
    }

    std::string detail() const {
        using detail::waa::clip;
        if (error_) return "Failed: " + clip(*error_, 300);
        switch (stage_) {
            case Stage::waiting: return is_waa_log_ ? "Benchmark starting" : "Waiting for the benchmark";
            case Stage::waiting_for_server:
                return server_note_.empty() ? "Waiting for the WAA server in Windows"
                                            : "Waiting for the WAA server in Windows: " + clip(server_note_, 200);
            case Stage::starting:
                return total_ > 0 ? "Benchmark starting: " + std::to_string(total_) + " tasks" : "Benchmark starting";
            case Stage::running: return running_detail();
            case Stage::finished: {
                std::string text = "Finished " + std::to_string(done_) + " tasks: " + std::to_string(successes_) +
                                   " succeeded, " + std::to_string(failures_) + " failed";
                if (average_) text += ", average score " + detail::waa::format_score(*average_);
                return text;
            }
        }
        return {};
    }

    // 0..1: tasks done of N (1 once the benchmark printed its average); never goes backwards.
    double progress_fraction() const noexcept { return progress_; }

    // The events since the last call, oldest first.
    std::vector<WaaEvent> take_events() {
        std::vector<WaaEvent> out(std::make_move_iterator(events_.begin()), std::make_move_iterator(events_.end()));
        events_.clear();
        return out;
    }

private:
    enum class Stage { waiting, waiting_for_server, starting, running, finished };
    // A traceback being read: printed by Python for an uncaught exception (bare), logged by WAA for a
    // task's exception (of_task), or logged elsewhere (logged).
    enum class Traceback { none, bare, logged, of_task };

    struct Task {
        int index = 0;
        std::string domain;
        bool counted = false;   // included in done_
        bool finished = false;  // finished since its latest start
        bool success = false;
        std::optional<double> result;  // of its latest finish
    };

    void on_message(std::string_view m, std::string_view level, bool prefixed, bool after_task_exception) {
        namespace waa = detail::waa;
        using waa::starts_with;
        if (starts_with(m, "Left tasks:")) {
            progressed();
            in_left_block_ = true;
            block_base_ = done_;  // a restarted run.py lists only what is left
            left_sum_ = 0;
            set_total(block_base_);
            set_stage(Stage::starting);
        } else if (starts_with(m, "Worker ") && m.find(" is doing tasks: [") != std::string_view::npos) {
            saw_waa();
            if (const auto count = waa::worker_task_count(m)) {
                set_total(cap_add(block_base_, *count));
                raise_progress();
            }
        } else if (starts_with(m, "[Domain]: ")) {
            saw_waa();
            pending_domain_ = std::string(waa::trim_blanks(m.substr(10)));
        } else if (starts_with(m, "[Example ID]: ")) {
            saw_waa();
            const std::string_view id = waa::trim_blanks(m.substr(14));
            if (!id.empty()) start_task(id);
        } else if (starts_with(m, "[Instruction]: ")) {
            set_text(instruction_, waa::clip(waa::trim_blanks(m.substr(15)), 400));
        } else if (starts_with(m, "Step ")) {
            on_step(m.substr(5));
        } else if (starts_with(m, "Running evaluator")) {
            progressed();
            set_flag(evaluating_, true);
        } else if (starts_with(m, "Result: ")) {
            if (const auto value = waa::parse_number(m.substr(8))) on_result(*value);
        } else if (starts_with(m, "Finished ")) {
            if (const auto task = waa::domain_and_id(waa::trim_blanks(m.substr(9)))) {
                on_task_end(task->first, task->second, std::nullopt);
            }
        } else if (starts_with(m, "Exception in ") && on_task_exception(m.substr(13))) {
            // a failed task; any other "Exception in …" (a thread's) falls through to the ERROR check
        } else if (starts_with(m, "Average score: ")) {
            if (const auto value = waa::parse_number(m.substr(15))) finish_benchmark(value);
        } else if (starts_with(m, "No examples finished.")) {
            finish_benchmark(std::nullopt);
        } else if (starts_with(m, "Traceback (most recent call last)")) {
            on_traceback_start(prefixed, after_task_exception);
        } else if (starts_with(m, "Waiting for the server to start")) {
            progressed();  // run.py (re)starts
            set_text(server_note_, std::string());
            set_stage(Stage::waiting_for_server);
        } else if (starts_with(m, "Failed to get hello:")) {
            advance_stage(Stage::waiting_for_server);
            if (stage_ == Stage::waiting_for_server) set_text(server_note_, std::string(waa::trim_blanks(m.substr(20))));
        } else if (starts_with(m, "Response from server:") || starts_with(m, "Windows Agent Arena: Starting") ||
                   starts_with(m, "TESTING ON TASK JSON PATH:")) {
            saw_waa();
            advance_stage(Stage::starting);
        } else if (starts_with(m, "Interrupted by ")) {
            set_error(std::string(m));
        } else if (prefixed ? (level == "ERROR" || level == "CRITICAL") : starts_with(m, "ERROR:")) {
            set_error(std::string(m.empty() ? std::string_view("ERROR") : m));
        }
    }

    void start_task(std::string_view id) {
        progressed();
        auto it = tasks_.find(std::string(id));
        if (it != tasks_.end() && current_id_ == id && !it->second.finished) return;  // the same start twice
        anonymous_result_.reset();
        set_flag(evaluating_, false);
        set_step(0);
        set_text(last_action_, std::string());
        set_text(instruction_, std::string());
        advance_stage(Stage::running);
        if (it == tasks_.end()) {
            if (tasks_.size() >= max_tracked_tasks) tasks_.clear();
            Task task;
            task.index = ++started_;
            task.domain = pending_domain_;
            it = tasks_.emplace(std::string(id), std::move(task)).first;
        } else if (!pending_domain_.empty()) {
            it->second.domain = pending_domain_;
        }
        Task& task = it->second;
        const bool rerun = task.counted;
        task.finished = false;
        // Each run of a task was one entry of N, but N and tasks_done() count a task once.
        if (rerun && total_ > done_) set_total(total_ - 1);
        set_text(current_id_, std::string(id));
        set_text(domain_, task.domain);
        current_index_ = task.index;
        pending_domain_.clear();
        changed_ = true;
        WaaEvent event = make_event(WaaEventKind::task_started, task.index, task.domain, current_id_);
        event.rerun = rerun;
        push(std::move(event));
    }

    void on_step(std::string_view rest) {
        const std::size_t colon = rest.find(':');
        if (colon == std::string_view::npos) return;
        const auto number = detail::waa::parse_count(rest.substr(0, colon));
        if (!number) return;
        progressed();
        advance_stage(Stage::running);
        set_step(*number);
        set_text(last_action_, detail::waa::clip(detail::waa::trim_blanks(rest.substr(colon + 1)), 200));
    }

    void on_result(double value) {
        progressed();
        advance_stage(Stage::running);
        set_flag(evaluating_, false);
        if (last_result_ != value) {
            last_result_ = value;
            changed_ = true;
        }
        const auto it = current_id_.empty() ? tasks_.end() : tasks_.find(current_id_);
        if (it != tasks_.end() && !it->second.finished) {
            finish_task(it->first, it->second, value, std::nullopt);
            return;
        }
        // A Result whose task start is not in this log (it began before the log did).
        const bool success = value > 0;
        ++done_;
        ++(success ? successes_ : failures_);
        anonymous_result_ = AnonymousResult{++started_, success};
        changed_ = true;
        WaaEvent event = make_event(WaaEventKind::task_finished, started_, std::string(), std::string());
        event.result = value;
        event.success = success;
        push(std::move(event));
        raise_progress();
    }

    // `Finished domain/id` (error absent) or `Exception in domain/id: …` (error present).
    void on_task_end(std::string_view domain, std::string_view id, std::optional<std::string> error) {
        progressed();
        advance_stage(Stage::running);
        auto it = tasks_.find(std::string(id));
        if (it == tasks_.end()) {
            if (tasks_.size() >= max_tracked_tasks) tasks_.clear();
            Task task;
            task.domain = std::string(domain);
            if (anonymous_result_) {  // the Result printed just before belongs to this task
                task.index = anonymous_result_->index;
                task.counted = task.finished = true;
                task.success = anonymous_result_->success;
                task.result = last_result_;
                anonymous_result_.reset();
                tasks_.emplace(std::string(id), std::move(task));
                return;
            }
            task.index = ++started_;
            it = tasks_.emplace(std::string(id), std::move(task)).first;
        }
        if (it->second.domain.empty()) it->second.domain = std::string(domain);
        // Finished after its Result, or an exception after the result was written: the result stands.
        if (!it->second.finished) finish_task(it->first, it->second, std::nullopt, std::move(error));
    }

    bool on_task_exception(std::string_view rest) {
        const std::size_t colon = rest.find(": ");
        const std::string_view task = rest.substr(0, colon);
        const auto parts = detail::waa::domain_and_id(task);
        if (!parts) return false;
        std::string error = colon == std::string_view::npos ? std::string("exception")
                                                            : detail::waa::clip(rest.substr(colon + 2), 300);
        after_task_exception_ = true;
        on_task_end(parts->first, parts->second, std::move(error));
        return true;
    }

    void finish_task(const std::string& id, Task& task, std::optional<double> result, std::optional<std::string> error) {
        const bool success = result && *result > 0;
        const bool rerun = task.counted;
        if (rerun) {
            --(task.success ? successes_ : failures_);
        } else {
            ++done_;
            task.counted = true;
        }
        ++(success ? successes_ : failures_);
        task.finished = true;
        task.success = success;
        task.result = result;
        changed_ = true;
        WaaEvent event = make_event(WaaEventKind::task_finished, task.index, task.domain, id);
        event.result = result;
        event.success = success;
        event.rerun = rerun;
        event.error = std::move(error);
        push(std::move(event));
        raise_progress();
    }

    void finish_benchmark(std::optional<double> average) {
        progressed();
        saw_waa();
        if (average_ != average) {
            average_ = average;
            changed_ = true;
        }
        advance_stage(Stage::finished);
        WaaEvent event = make_event(WaaEventKind::benchmark_finished, 0, std::string(), std::string());
        event.average_score = average;
        push(std::move(event));
        raise_progress();
    }

    void on_traceback_start(bool prefixed, bool after_task_exception) {
        if (prefixed && after_task_exception) {
            traceback_ = Traceback::of_task;  // already counted as the task's failure
            return;
        }
        traceback_ = prefixed ? Traceback::logged : Traceback::bare;
        set_error("Traceback (most recent call last)");
    }

    // An unprefixed line while a traceback is open; true when it belonged to the traceback.
    bool continue_traceback(std::string_view m) {
        using detail::waa::starts_with;
        if (m.empty() || m.front() == ' ' || m.front() == '\t' || m.front() == '^' ||
            starts_with(m, "Traceback (most recent call last)") || starts_with(m, "During handling of the above") ||
            starts_with(m, "The above exception was")) {
            return true;
        }
        // The exception line closes the traceback (a chained one may open again).
        if (traceback_ != Traceback::of_task) set_error(detail::waa::clip(m, 500));
        traceback_ = Traceback::none;
        return true;
    }

    std::string running_detail() const {
        std::string text = "Task " + std::to_string(current_index_ > 0 ? current_index_ : done_);
        if (total_ > 0) text += " of " + std::to_string(total_);
        if (!domain_.empty()) text += " (" + domain_ + ")";
        const auto it = current_id_.empty() ? tasks_.end() : tasks_.find(current_id_);
        if (it != tasks_.end() && it->second.finished) {
            text += ": finished, ";
            text += it->second.success ? "success" : "failure";
            if (it->second.result) text += " (result " + detail::waa::format_score(*it->second.result) + ")";
        } else if (evaluating_) {
            text += ": running evaluator";
        } else if (agent_step_ > 0) {
            text += ": step " + std::to_string(agent_step_);
            if (!last_action_.empty()) text += ", " + last_action_;
        } else if (!instruction_.empty()) {
            text += ": " + instruction_;
        }
        return text;
    }

    WaaEvent make_event(WaaEventKind kind, int index, std::string domain, std::string id) const {
        WaaEvent event;
        event.kind = kind;
        event.task_index = index;
        event.total_tasks = total_;
        event.domain = std::move(domain);
        event.task_id = std::move(id);
        event.log_time = log_time_;
        event.log_seconds = log_seconds_;
        return event;
    }

    void push(WaaEvent event) {
        if (events_.size() >= max_pending_events) events_.pop_front();
        events_.push_back(std::move(event));
        changed_ = true;
    }

    // Any sign that the benchmark moves on clears an earlier error: it did not end the run.
    void progressed() {
        saw_waa();
        if (error_) {
            error_.reset();
            changed_ = true;
        }
    }

    void saw_waa() {
        if (!is_waa_log_) {
            is_waa_log_ = true;
            changed_ = true;
        }
    }

    // Within one run.py the stage only moves forward; a new run.py sets it back with set_stage.
    void advance_stage(Stage next) {
        if (static_cast<int>(next) > static_cast<int>(stage_)) set_stage(next);
    }

    void set_stage(Stage next) {
        if (stage_ != next) {
            stage_ = next;
            changed_ = true;
        }
    }

    // Progress follows N only once N is whole (see end_left_block), never a block's partial sum.
    void set_total(int total) {
        if (total_ != total) {
            total_ = total;
            changed_ = true;
        }
    }

    void end_left_block() {
        in_left_block_ = false;
        raise_progress();
    }

    void set_step(int step) {
        if (agent_step_ != step) {
            agent_step_ = step;
            changed_ = true;
        }
    }

    void set_flag(bool& flag, bool value) {
        if (flag != value) {
            flag = value;
            changed_ = true;
        }
    }

    void set_text(std::string& field, std::string value) {
        if (field != value) {
            field = std::move(value);
            changed_ = true;
        }
    }

    void set_error(std::string message) {
        if (error_ != message) {
            error_ = std::move(message);
            changed_ = true;
        }
    }

    void raise_progress() {
        double value = 0;
        if (stage_ == Stage::finished) {
            value = 1.0;
        } else if (total_ > 0) {
            value = done_ >= total_ ? 1.0 : static_cast<double>(done_) / total_;
        }
        if (value > progress_) {
            progress_ = value;
            changed_ = true;
        }
    }

    static int cap_add(int a, int b) noexcept { return a > 1000000000 - b ? 1000000000 : a + b; }

    Stage stage_ = Stage::waiting;
    Traceback traceback_ = Traceback::none;
    bool changed_ = false;
    bool is_waa_log_ = false;
    bool in_left_block_ = false;
    bool after_task_exception_ = false;
    bool evaluating_ = false;
    int block_base_ = 0;
    int left_sum_ = 0;
    int total_ = 0;
    int done_ = 0;
    int started_ = 0;
    int successes_ = 0;
    int failures_ = 0;
    int agent_step_ = 0;
    int current_index_ = 0;
    double progress_ = 0.0;
    std::optional<double> average_;
    std::optional<double> last_result_;
    struct AnonymousResult {
        int index = 0;
        bool success = false;
    };
    std::optional<AnonymousResult> anonymous_result_;  // a Result not yet tied to a task id
    std::optional<std::string> error_;
    std::string domain_;
    std::string pending_domain_;
    std::string current_id_;
    std::string instruction_;
    std::string last_action_;
    std::string server_note_;
    std::string log_time_;
    std::optional<double> log_seconds_;
    std::unordered_map<std::string, Task> tasks_;
    std::deque<WaaEvent> events_;
};

}  // namespace azops
