// azops/docker_parser.hpp — what a `docker build` is doing, read from its output.
//
// Owns: DockerStepParser, which reads the sanitised output lines of one `docker build` — the legacy
// builder (`Step X/Y : …`), BuildKit `--progress=plain` (`#N [k/n] …`) and BuildKit `--progress=tty`
// once its redraws have been sanitised into lines (`[+] Building …`, ` => [k/n] …`) — and keeps step X
// of Y, the current instruction and phase, per-step timings, cached steps, the outcome and the
// builder's error text, plus the events that led there. docker_phase_for_instruction() names the
// phase an instruction belongs to.
// Thread-safety: DockerStepParser is a plain value: one thread feeds it, or its owner guards it.
// Errors: feed() never throws on any input (only std::bad_alloc can escape); lines it does not
// recognise are ignored; everything it stores is bounded, whatever it is fed. One parser follows one
// build: once a build has ended, a second build in the same stream is not tracked.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <iterator>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <azops/detail/text.hpp>

namespace azops {

enum class BuildOutcome { running, succeeded, failed };

// Which of docker's output formats the parser has recognised.
enum class DockerLogFormat { unknown, legacy, buildkit_plain, buildkit_tty };

// Where step times come from: the clock passed to feed() (and the log's own durations where it gives
// them), or the log alone — for a captured log whose lines all arrive at once.
enum class StepTiming { clock, log_only };

struct DockerStepEvent {  // one thing that happened, in order
    enum class Kind {
        step_started,
        step_cached,
        step_finished,
        step_failed,
        pulling,
        exporting,
        build_succeeded,
        build_failed
    };
    Kind kind = Kind::step_started;
    int step = 0;   // the step's position in the whole build (1-based); for build events, step()
    int total = 0;  // total_steps() when the event happened
    std::string instruction;
    std::optional<double> seconds;  // the step's duration, on step_finished and step_failed when known
    std::string message;            // image reference, tag, or error text
};

struct DockerStep {
    int index = 0;  // position in the whole build: stages are numbered one after another, in the order they appear
    std::string instruction;
    bool cached = false;
    std::optional<double> started_at, finished_at, duration;  // cached steps have no duration: they did no work
    bool failed = false;
    bool done = false;            // finished successfully or taken from the cache
    bool cancelled = false;       // stopped because another step failed
    bool output_clipped = false;  // BuildKit stopped printing its output: silence here is not a stall
    std::string stage;    // BuildKit stage label (`builder`, `stage-0`, `linux/amd64`); empty for one unnamed stage
    int stage_step = 0;   // k of `[k/n]`, or X of `Step X/Y`
    int stage_total = 0;  // n of `[k/n]`, or Y of `Step X/Y`
};

inline std::string_view to_string(DockerStepEvent::Kind kind) noexcept {
    switch (kind) {
        case DockerStepEvent::Kind::step_started: return "step_started";
        case DockerStepEvent::Kind::step_cached: return "step_cached";
        case DockerStepEvent::Kind::step_finished: return "step_finished";
        case DockerStepEvent::Kind::step_failed: return "step_failed";
        case DockerStepEvent::Kind::pulling: return "pulling";
        case DockerStepEvent::Kind::exporting: return "exporting";
        case DockerStepEvent::Kind::build_succeeded: return "build_succeeded";
        case DockerStepEvent::Kind::build_failed: return "build_failed";
    }
    return "unknown";
}

inline std::string_view to_string(BuildOutcome outcome) noexcept {
    switch (outcome) {
        case BuildOutcome::running: return "running";
        case BuildOutcome::succeeded: return "succeeded";
        case BuildOutcome::failed: return "failed";
    }
    return "unknown";
}

inline std::string_view to_string(DockerLogFormat format) noexcept {
    switch (format) {
        case DockerLogFormat::unknown: return "unknown";
        case DockerLogFormat::legacy: return "legacy";
        case DockerLogFormat::buildkit_plain: return "buildkit_plain";
        case DockerLogFormat::buildkit_tty: return "buildkit_tty";
    }
    return "unknown";
}

namespace detail::docker {

// Bounds on what one parser keeps, so that no input can make it grow without limit. Real builds stay
// far below them (the WAA image has 30 instructions and about 30 BuildKit vertices).
inline constexpr std::size_t max_text = 4096;
inline constexpr std::size_t max_steps = 4096;
inline constexpr std::size_t max_stages = 256;
inline constexpr std::size_t max_vertices = 16384;
inline constexpr std::size_t max_pending_events = 1024;
inline constexpr std::size_t max_pull_names = 64;

using text::ends_with;
using text::is_digit;
using text::starts_with;
using text::trim_blanks;

// Takes 1–7 decimal digits from the front of `s`; more digits than that is no counter docker prints.
inline std::optional<int> take_int(std::string_view& s) noexcept {
    std::size_t i = 0;
    int value = 0;
    while (i < s.size() && i < 8 && is_digit(s[i])) {
        value = value * 10 + (s[i] - '0');
        ++i;
    }
    if (i == 0 || i == 8) return std::nullopt;
    s.remove_prefix(i);
    return value;
}

// `12`, `12.3`, `0.057`: the only number forms docker prints for seconds. Locale-independent.
inline std::optional<double> parse_decimal(std::string_view s) noexcept {
    std::string_view rest = s;
    const auto whole = take_int(rest);
    if (!whole) return std::nullopt;
    double value = *whole;
    if (rest.empty()) return value;
    if (rest.front() != '.' || rest.size() == 1 || rest.size() > 10) return std::nullopt;
    double scale = 1.0;
    long long fraction = 0;
    for (std::size_t i = 1; i < rest.size(); ++i) {
        if (!is_digit(rest[i])) return std::nullopt;
        fraction = fraction * 10 + (rest[i] - '0');
        scale *= 10.0;
    }
    return value + static_cast<double>(fraction) / scale;
}

// `12.3s` → 12.3
inline std::optional<double> parse_seconds(std::string_view s) noexcept {
    if (s.empty() || s.back() != 's') return std::nullopt;
    return parse_decimal(s.substr(0, s.size() - 1));
}

// A copy of at most max_text bytes, never splitting a UTF-8 sequence.
inline std::string bounded_text(std::string_view s) {
    if (s.size() <= max_text) return std::string(s);
    std::size_t n = max_text;
    while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
    return std::string(s.substr(0, n));
}

inline std::uint64_t text_hash(std::string_view s) noexcept {
    std::uint64_t h = 14695981039346656037ULL;  // FNV-1a
    for (const char c : s) {
        h ^= static_cast<unsigned char>(c);
        h *= 1099511628211ULL;
    }
    return h;
}

// The step counter BuildKit puts before an instruction: `[k/n]`, `[ k/n]` (k padded to the width of
// n), `[stage k/n]`, `[linux/amd64 stage k/n]`.
struct StepLabel {
    std::string_view stage;
    int index = 0;
    int total = 0;
    std::string_view instruction;
};

inline std::optional<StepLabel> parse_step_label(std::string_view s) noexcept {
    if (s.empty() || s.front() != '[') return std::nullopt;
    const std::size_t close = s.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    const std::string_view inside = s.substr(1, close - 1);
    std::size_t p = inside.size();
    while (p > 0 && is_digit(inside[p - 1])) --p;
    const std::size_t total_digits = inside.size() - p;
    if (total_digits == 0 || total_digits > 4 || p == 0 || inside[p - 1] != '/') return std::nullopt;
    const std::size_t index_end = p - 1;
    std::size_t q = index_end;
    while (q > 0 && is_digit(inside[q - 1])) --q;
    if (q == index_end || index_end - q > 4) return std::nullopt;
    const std::string_view before = inside.substr(0, q);
    if (!before.empty() && before.back() != ' ') return std::nullopt;
    std::string_view index_text = inside.substr(q, index_end - q);
    std::string_view total_text = inside.substr(p);
    StepLabel label;
    label.index = *take_int(index_text);
    label.total = *take_int(total_text);
    if (label.index < 1 || label.index > label.total) return std::nullopt;
    label.stage = trim_blanks(before);
    label.instruction = trim_blanks(s.substr(close + 1));
    return label;
}

// `[internal] …`, `[auth] …`, `[linux/amd64 internal] …`: BuildKit's own work, not a step.
inline bool is_internal_label(std::string_view s) noexcept {
    const std::size_t close = s.find(']');
    if (s.empty() || s.front() != '[' || close == std::string_view::npos) return false;
    const std::string_view inside = s.substr(1, close - 1);
    return inside == "internal" || inside == "auth" || ends_with(inside, " internal") || ends_with(inside, " auth");
}

// Splits ` … RUN make   3.2s` (a tty line) into its text and its trailing seconds.
inline std::pair<std::string_view, std::optional<double>> split_trailing_seconds(std::string_view s) noexcept {
    s = trim_blanks(s);
    const std::size_t space = s.find_last_of(' ');
    if (space == std::string_view::npos) return {s, std::nullopt};
    const auto seconds = parse_seconds(s.substr(space + 1));
    if (!seconds) return {s, std::nullopt};
    return {trim_blanks(s.substr(0, space)), seconds};
}

inline bool is_hex_id(std::string_view s) noexcept {
    if (starts_with(s, "sha256:")) s.remove_prefix(7);
    if (s.size() < 12 || s.size() > 64) return false;
    return std::all_of(s.begin(), s.end(), [](char c) { return is_digit(c) || (c >= 'a' && c <= 'f'); });
}

// The verbs that make a package manager fetch or install something, space-separated and space-framed;
// empty when `name` is no package manager.
inline std::string_view install_verbs(std::string_view name) noexcept {
    struct Entry {
        std::string_view manager;
        std::string_view verbs;
    };
    static constexpr std::array<Entry, 28> table{{
        {"apt-get", " install update upgrade dist-upgrade build-dep "},
        {"apt", " install update upgrade full-upgrade "},
        {"aptitude", " install update "},
        {"apk", " add update upgrade "},
        {"yum", " install update upgrade groupinstall "},
        {"dnf", " install update upgrade groupinstall "},
        {"microdnf", " install update "},
        {"tdnf", " install update "},
        {"zypper", " install in refresh ref update "},
        {"pip", " install download "},
        {"pip3", " install download "},
        {"pipx", " install "},
        {"pipenv", " install sync "},
        {"poetry", " install add "},
        {"uv", " sync add "},
        {"conda", " install create update env "},
        {"mamba", " install create update env "},
        {"micromamba", " install create "},
        {"npm", " install i ci add "},
        {"yarn", " install add "},
        {"pnpm", " install i add "},
        {"gem", " install "},
        {"bundle", " install "},
        {"composer", " install require update "},
        {"cargo", " install fetch "},
        {"go", " get install mod "},
        {"dotnet", " restore "},
        {"playwright", " install install-deps "},
    }};
    for (const auto& entry : table) {
        if (entry.manager == name) return entry.verbs;
    }
    return {};
}

inline bool is_install_verb(std::string_view manager, std::string_view verb) noexcept {
    const std::string_view verbs = install_verbs(manager);
    const std::size_t at = verbs.find(verb);
    return at != std::string_view::npos && verbs[at - 1] == ' ' && verbs[at + verb.size()] == ' ';
}

// Words that run the command after them (`sudo apt-get …`, `env DEBIAN_FRONTEND=noninteractive apt-get …`).
inline bool is_command_wrapper(std::string_view word) noexcept {
    return word == "sudo" || word == "env" || word == "exec" || word == "time" || word == "nice" || word == "nohup" ||
           word == "command" || word == "xargs";
}

inline bool is_python(std::string_view word) noexcept {
    return starts_with(word, "python") &&
           std::all_of(word.begin() + 6, word.end(), [](char c) { return is_digit(c) || c == '.'; });
}

// True when a RUN command line installs dependencies: a package manager in command position, followed,
// after its options, by an install-like verb (`apt-get -y install`, `python3 -m pip install`,
// `cd /web && npm ci`); not when its name is only an argument (`echo pip install`).
inline bool runs_package_manager(std::string_view command) noexcept {
    const auto is_separator = [](char c) { return c == ';' || c == '&' || c == '|' || c == '(' || c == ')'; };
    bool command_position = true;
    bool after_python = false;  // `python -m` runs the module named next as a command
    std::string_view manager;
    std::size_t i = 0;
    while (i < command.size()) {
        const char c = command[i];
        if (c == ' ' || c == '\t' || c == '\\') {
            ++i;
            continue;
        }
        if (is_separator(c)) {
            command_position = true;
            after_python = false;
            manager = {};
            ++i;
            continue;
        }
        const std::size_t start = i;
        while (i < command.size() && command[i] != ' ' && command[i] != '\t' && !is_separator(command[i])) ++i;
        std::string_view word = command.substr(start, i - start);
        if (!manager.empty()) {
            if (word.front() == '-') continue;
            if (is_install_verb(manager, word)) return true;
            if (!install_verbs(word).empty()) {  // `uv pip install`: a manager driving another
                manager = word;
                continue;
            }
            manager = {};
            command_position = false;
            continue;
        }
        if (!command_position) continue;
        if (word.front() == '-') {
            if (after_python && word == "-m") continue;
            if (after_python) command_position = false;
            continue;
        }
        if (word.find('=') != std::string_view::npos || is_command_wrapper(word)) continue;
        const std::size_t slash = word.rfind('/');
        if (slash != std::string_view::npos) word.remove_prefix(slash + 1);
        if (is_python(word)) {
            after_python = true;
            continue;
        }
        after_python = false;
        command_position = false;
        if (!install_verbs(word).empty()) manager = word;
    }
    return false;
}

inline bool equals_ignoring_case(std::string_view a, std::string_view upper) noexcept {
    if (a.size() != upper.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        const char c = (a[i] >= 'a' && a[i] <= 'z') ? static_cast<char>(a[i] - 'a' + 'A') : a[i];
        if (c != upper[i]) return false;
    }
    return true;
}

}  // namespace detail::docker

// The phase a Dockerfile instruction puts the build in: `FROM` pulls the base image, `COPY`/`ADD`
// copy files, a `RUN` that calls a package manager installs dependencies, another `RUN` runs a step,
// and metadata instructions (`ENV`, `WORKDIR`, `EXPOSE`, …) configure the image.
inline std::string docker_phase_for_instruction(std::string_view instruction) {
    std::string_view rest = detail::docker::trim_blanks(instruction);
    const auto next_word = [&rest] {
        const std::size_t end = std::min(rest.find(' '), rest.size());
        const std::string_view word = rest.substr(0, end);
        rest = detail::docker::trim_blanks(rest.substr(end));
        return word;
    };
    std::string_view keyword = next_word();
    if (detail::docker::equals_ignoring_case(keyword, "ONBUILD")) keyword = next_word();
    if (keyword.empty()) return "";
    if (detail::docker::equals_ignoring_case(keyword, "FROM")) return "pulling_base_image";
    if (detail::docker::equals_ignoring_case(keyword, "COPY") || detail::docker::equals_ignoring_case(keyword, "ADD"))
        return "copying_files";
    if (detail::docker::equals_ignoring_case(keyword, "RUN"))
        return detail::docker::runs_package_manager(rest) ? "installing_dependencies" : "running_step";
    return "configuring_image";
}

class DockerStepParser {
public:
    explicit DockerStepParser(StepTiming timing = StepTiming::clock) : timing_(timing) {}

    // Feeds one sanitised line; `now_seconds` is a monotonic time in seconds used to time steps when
    // the log itself gives no durations. Returns true when the parser's visible state changed.
    bool feed(std::string_view line, double now_seconds = 0.0) {
        if (line.empty()) return false;
        changed_ = false;
        now_ = now_seconds;
        switch (line.front()) {
            case '#': on_hash_line(line); break;
            case ' ': on_indented_line(line); break;
            case '[': on_bracket_line(line); break;
            case '-': on_dash_line(line); break;
            default: on_other_line(line); break;
        }
        return changed_;
    }

    // Events since the last call, oldest first. At most detail::docker::max_pending_events (1024) wait
    // here: when nobody takes them, the oldest are dropped (and counted in dropped_events()).
    std::vector<DockerStepEvent> take_events() {
        std::vector<DockerStepEvent> out(std::make_move_iterator(events_.begin()),
                                         std::make_move_iterator(events_.end()));
        events_.clear();
        return out;
    }
    std::size_t dropped_events() const noexcept { return dropped_events_; }

    bool is_docker_build() const noexcept { return format_ != DockerLogFormat::unknown || seen_docker_; }
    DockerLogFormat format() const noexcept { return format_; }

    // Step X of Y. X adds up, over the stages, the highest step started or done in each (steps of one
    // stage run in order), so it never decreases; Y adds up the stages' totals, and grows when a
    // stage BuildKit had not yet printed appears.
    int step() const noexcept { return step_; }
    int total_steps() const noexcept { return total_; }

    // Done and cached steps over all steps, 0..1; it never decreases (not even when a newly seen stage
    // raises the total), and is 1 once the build succeeded.
    double progress_fraction() const noexcept { return progress_; }

    // The instruction of the step most recently started that still runs; when none runs, of the last
    // one that ran. The reference is valid until the next feed().
    const std::string& instruction() const noexcept {
        return current_ ? steps_[*current_].instruction : no_instruction_;
    }

    // pulling_base_image, loading_build_context, copying_files, installing_dependencies, running_step,
    // configuring_image, exporting_image, build_succeeded, build_failed; `starting` before anything
    // happened, empty when the output does not look like a docker build.
    std::string phase() const {
        if (outcome_ == BuildOutcome::failed) return "build_failed";
        if (outcome_ == BuildOutcome::succeeded) return "build_succeeded";
        if (exporting_active_) return "exporting_image";
        if (legacy_pulling_) return "pulling_base_image";
        if (!running_.empty()) return docker_phase_for_instruction(steps_[running_.back()].instruction);
        if (active_pulls_ > 0) return "pulling_base_image";
        if (current_) return docker_phase_for_instruction(steps_[*current_].instruction);
        if (loading_context_) return "loading_build_context";
        return is_docker_build() ? "starting" : "";
    }

    // The outcome as the log shows it so far. A failure is final; a success can still turn into a
    // failure when the builder reports an error after it (a push that fails after `naming to`).
    BuildOutcome outcome() const noexcept { return outcome_; }
    const std::string& error() const noexcept { return error_; }  // the builder's own error text

    // Every step seen, in the order the log first showed it.
    const std::vector<DockerStep>& steps() const noexcept { return steps_; }

private:
    using Kind = DockerStepEvent::Kind;
    static constexpr std::size_t no_step = static_cast<std::size_t>(-1);

    struct Stage {
        std::string label;
        int total = 0;
        int offset = 0;  // steps of the stages that appeared before this one
        int highest_seen = 0;
        int highest_done = 0;
    };

    enum class Role : unsigned char { other, step, pull, exporting, internal };
    enum class VertexEnd { done, cached, failed, cancelled };

    struct Vertex {
        Role role = Role::other;
        bool active = true;
        std::size_t step = no_step;
    };

    // ---- dispatch by first byte: the common line is classified by a few leading bytes ----

    void on_hash_line(std::string_view line) {
        if (format_ == DockerLogFormat::legacy) return;  // a `#` in legacy output is a RUN's own text
        std::string_view rest = line.substr(1);
        const auto id = detail::docker::take_int(rest);
        if (!id || rest.size() < 2 || rest.front() != ' ') return;
        rest.remove_prefix(1);
        if (detail::docker::is_digit(rest.front())) {  // `#24 41.07 Collecting gymnasium`: a step's output
            std::size_t i = 1;
            while (i < rest.size() && (detail::docker::is_digit(rest[i]) || rest[i] == '.')) ++i;
            if (i + 1 < rest.size() && rest[i] == ' ' && rest[i + 1] == '[') on_vertex_output(*id, rest.substr(i + 1));
            return;
        }
        if (rest.front() == '[' && detail::docker::starts_with(rest, clipped_marker)) {
            on_vertex_output(*id, rest);
            return;
        }
        on_vertex_line(*id, rest);
    }

    void on_indented_line(std::string_view line) {
        if (detail::docker::starts_with(line, " ---> ")) {
            if (format_ != DockerLogFormat::buildkit_plain && format_ != DockerLogFormat::buildkit_tty)
                on_legacy_arrow(line.substr(6));
            return;
        }
        if (format_ == DockerLogFormat::legacy) return;
        std::string_view body = detail::docker::trim_blanks(line);
        if (detail::docker::starts_with(body, "=> ")) {
            on_tty_vertex_line(body.substr(3));
        } else if (in_error_block_ && detail::docker::starts_with(body, "> [")) {
            on_error_block_header(body.substr(2));
        }
    }

    void on_bracket_line(std::string_view line) {
        if (format_ == DockerLogFormat::legacy || !detail::docker::starts_with(line, "[+] Building ")) return;
        if (format_ == DockerLogFormat::unknown) set_format(DockerLogFormat::buildkit_tty);
        seen_docker_ = true;
        // In the final frame every step drawn without ERROR or CANCELED has ended.
        tty_finished_frame_ = line.find(" FINISHED") != std::string_view::npos;
    }

    void on_dash_line(std::string_view line) {
        // BuildKit frames the failed step's last output lines between two `------` lines.
        if (format_ != DockerLogFormat::legacy && line == "------") in_error_block_ = !in_error_block_;
    }

    void on_other_line(std::string_view line) {
        switch (line.front()) {
            case 'S':
                if (detail::docker::starts_with(line, "Step ")) return on_legacy_step(line.substr(5));
                if (detail::docker::starts_with(line, "Successfully built "))
                    return on_legacy_success(line.substr(19), true);
                if (detail::docker::starts_with(line, "Successfully tagged "))
                    return on_legacy_success(line.substr(20), false);
                if (detail::docker::starts_with(line, "Sending build context to Docker daemon")) {
                    if (format_ == DockerLogFormat::unknown) set_format(DockerLogFormat::legacy);
                    if (format_ == DockerLogFormat::legacy) set_loading_context();
                    return;
                }
                if (detail::docker::starts_with(line, "Status: ")) return stop_legacy_pull();
                break;
            case 'R':
                if (detail::docker::starts_with(line, "Removing intermediate container ")) legacy_in_container_ = false;
                return;
            case 'D':
                if (detail::docker::starts_with(line, "DEPRECATED: The legacy builder is deprecated") &&
                    format_ == DockerLogFormat::unknown)
                    set_format(DockerLogFormat::legacy);
                return;
            case 'T':
                if (detail::docker::starts_with(line, "The command '") &&
                    line.find("' returned a non-zero code: ") != std::string_view::npos &&
                    format_ != DockerLogFormat::buildkit_plain && format_ != DockerLogFormat::buildkit_tty)
                    return on_legacy_failure(line);
                break;
            case 'E':
                if (detail::docker::starts_with(line, "ERROR: ")) return on_builder_error(line.substr(7));
                if (detail::docker::starts_with(line, "Error response from daemon: ") &&
                    format_ != DockerLogFormat::unknown && !legacy_in_container_)
                    return fail_build(line, true);
                break;
            case 'e':
                if (detail::docker::starts_with(line, "error: ")) return on_builder_error(line.substr(7));
                if (detail::docker::starts_with(line, "executor failed running ")) return on_builder_error(line);
                break;
            case 'f':
                if (detail::docker::starts_with(line, "failed to solve")) return on_builder_error(line);
                break;
            default: break;
        }
        if (format_ == DockerLogFormat::legacy && !legacy_in_container_) on_legacy_builder_message(line);
    }

    // ---- BuildKit --progress=plain ----

    static constexpr std::string_view clipped_marker = "[output clipped, log limit";

    void on_vertex_output(int id, std::string_view text) {
        if (!detail::docker::starts_with(text, clipped_marker)) return;
        const auto it = vertices_.find(id);
        if (it == vertices_.end() || it->second.step == no_step) return;
        DockerStep& step = steps_[it->second.step];
        if (!step.output_clipped) {
            step.output_clipped = true;
            changed_ = true;
        }
    }

    void on_vertex_line(int id, std::string_view rest) {
        const auto it = vertices_.find(id);
        if (it == vertices_.end()) {
            if (detail::docker::starts_with(rest, "DONE") || detail::docker::starts_with(rest, "CACHED") ||
                detail::docker::starts_with(rest, "ERROR") || detail::docker::starts_with(rest, "CANCELED") ||
                rest == "...")
                return;  // the end of a vertex whose header the log did not show
            return open_vertex(id, rest);
        }
        Vertex& vertex = it->second;
        if (detail::docker::starts_with(rest, "DONE")) {
            return end_vertex(vertex, VertexEnd::done,
                              detail::docker::parse_seconds(detail::docker::trim_blanks(rest.substr(4))), {});
        }
        if (rest == "CACHED") return end_vertex(vertex, VertexEnd::cached, std::nullopt, {});
        if (detail::docker::starts_with(rest, "ERROR")) {
            std::string_view message = rest.substr(5);
            if (detail::docker::starts_with(message, ":")) message.remove_prefix(1);
            return end_vertex(vertex, VertexEnd::failed, std::nullopt, detail::docker::trim_blanks(message));
        }
        if (detail::docker::starts_with(rest, "CANCELED"))
            return end_vertex(vertex, VertexEnd::cancelled, std::nullopt, {});
        // Status lines (`resolve …`, `sha256:… 1.2GB / 9.8GB`) and headers re-printed when the printer
        // comes back to a vertex change nothing, except the image name that ends a successful export.
        if (vertex.role == Role::exporting && detail::docker::starts_with(rest, "naming to ") &&
            detail::docker::ends_with(rest, " done")) {
            succeed_build(rest.substr(10, rest.size() - 10 - 5));
        }
    }

    void open_vertex(int id, std::string_view name) {
        if (vertices_.size() >= detail::docker::max_vertices) return;
        Vertex vertex;
        if (name.front() == '[') {
            if (const auto label = detail::docker::parse_step_label(name)) {
                if (format_ == DockerLogFormat::unknown) set_format(DockerLogFormat::buildkit_plain);
                vertex.step = open_step(*label);
                if (vertex.step == no_step) return;
                vertex.role = Role::step;
            } else if (detail::docker::is_internal_label(name)) {
                if (format_ == DockerLogFormat::unknown) set_format(DockerLogFormat::buildkit_plain);
                vertex.role = Role::internal;
                set_loading_context();
            }
        } else if (detail::docker::starts_with(name, "FROM ")) {
            vertex.role = Role::pull;  // an image COPY --from names: an implicit stage, not a step
            ++active_pulls_;
            emit(Kind::pulling, step_, std::string(name), std::nullopt, name.substr(5));
        } else if (detail::docker::starts_with(name, "exporting to ")) {
            vertex.role = Role::exporting;
            start_exporting(name);
        } else if (detail::docker::starts_with(name, "building with ")) {
            if (format_ == DockerLogFormat::unknown) set_format(DockerLogFormat::buildkit_plain);
        }
        vertices_.emplace(id, vertex);
    }

    void end_vertex(Vertex& vertex, VertexEnd how, std::optional<double> seconds, std::string_view message) {
        if (!vertex.active) return;
        vertex.active = false;
        switch (vertex.role) {
            case Role::step:
                if (how == VertexEnd::failed) {
                    fail_step(vertex.step, message, seconds);
                } else if (how == VertexEnd::cancelled) {
                    cancel_step(vertex.step);
                } else {
                    finish_step(vertex.step, how == VertexEnd::cached, seconds);
                }
                break;
            case Role::pull:
                if (active_pulls_ > 0) {
                    --active_pulls_;
                    changed_ = true;
                }
                break;
            case Role::exporting:
                if (exporting_active_) {
                    exporting_active_ = false;
                    changed_ = true;
                }
                // Without a tag there is no `naming to` line: the export's end is the build's end.
                if (how == VertexEnd::done) succeed_build({});
                break;
            case Role::other:
            case Role::internal: break;
        }
    }

    void on_error_block_header(std::string_view text) {  // `[stage-0 16/32] RUN python3 -c "...":`
        auto label = detail::docker::parse_step_label(text);
        if (!label) return;
        if (detail::docker::ends_with(label->instruction, ":")) label->instruction.remove_suffix(1);
        const std::size_t pos = open_step(*label);
        if (pos != no_step) fail_step(pos, {}, std::nullopt);
    }

    // `ERROR: failed to solve: …` (buildx), `error: …`, `failed to solve …` and `executor failed
    // running …` (older CLIs): the builder's final word on a failed BuildKit build.
    void on_builder_error(std::string_view message) {
        if (format_ == DockerLogFormat::legacy || in_error_block_) return;
        const bool clearly_build = detail::docker::starts_with(message, "failed to solve") ||
                                   detail::docker::starts_with(message, "failed to build") ||
                                   detail::docker::starts_with(message, "executor failed running");
        if (format_ == DockerLogFormat::unknown && !clearly_build) return;
        fail_build(message, false);
    }

    // ---- BuildKit --progress=tty, after sanitising ----

    // `body`: the text after ` => `.
    void on_tty_vertex_line(std::string_view body) {
        if (detail::docker::starts_with(body, "=> ")) {  // a status or output line of the vertex above
            if (detail::docker::starts_with(body, "=> # [output clipped") && tty_last_step_ != no_step &&
                !steps_[tty_last_step_].output_clipped) {
                steps_[tty_last_step_].output_clipped = true;
                changed_ = true;
            }
            return;
        }
        auto [text, seconds] = detail::docker::split_trailing_seconds(body);
        std::optional<VertexEnd> verdict;  // none: drawn without one, running or (in the last frame) done
        if (detail::docker::starts_with(text, "CACHED ")) {
            verdict = VertexEnd::cached;
            text.remove_prefix(7);
        } else if (detail::docker::starts_with(text, "ERROR ")) {
            verdict = VertexEnd::failed;
            text.remove_prefix(6);
        } else if (detail::docker::starts_with(text, "CANCELED ")) {
            verdict = VertexEnd::cancelled;
            text.remove_prefix(9);
        }
        if (text.empty()) return;
        if (text.front() == '[') {
            if (const auto label = detail::docker::parse_step_label(text)) {
                on_tty_step(*label, verdict, seconds);
            } else if (detail::docker::is_internal_label(text)) {
                set_loading_context();
            }
        } else if (detail::docker::starts_with(text, "exporting to ")) {
            if (verdict) {  // an export that failed or was cancelled
                if (exporting_active_) {
                    exporting_active_ = false;
                    changed_ = true;
                }
                return;
            }
            if (!exporting_seen_) start_exporting(text);
            if (tty_finished_frame_) succeed_build({});
        } else if (detail::docker::starts_with(text, "FROM ")) {
            remember_pull(text);
        }
    }

    void on_tty_step(const detail::docker::StepLabel& label, std::optional<VertexEnd> verdict,
                     std::optional<double> seconds) {
        // Steps of one stage run one after another: a later step on screen means the earlier ones ended.
        for (std::size_t k = 0; k < running_.size();) {
            const std::size_t other = running_[k];
            if (steps_[other].stage == label.stage && steps_[other].stage_step < label.index) {
                finish_step(other, false, tracks_[other].shown_seconds);
            } else {
                ++k;
            }
        }
        const std::size_t pos = open_step(label);
        if (pos == no_step) return;
        tty_last_step_ = pos;
        if (seconds) tracks_[pos].shown_seconds = seconds;
        if (!verdict && tty_finished_frame_) verdict = VertexEnd::done;
        if (verdict == VertexEnd::cached) {
            finish_step(pos, true, std::nullopt);
        } else if (verdict == VertexEnd::failed) {
            fail_step(pos, {}, seconds);
        } else if (verdict == VertexEnd::cancelled) {
            cancel_step(pos);
        } else if (verdict == VertexEnd::done) {
            finish_step(pos, false, seconds);
        } else if (steps_[pos].done && seconds && steps_[pos].duration != seconds) {
            steps_[pos].duration = seconds;  // a redraw shows the finished step's final time
            changed_ = true;
        }
    }

    void remember_pull(std::string_view name) {
        const std::uint64_t h = detail::docker::text_hash(name);
        if (std::find(pull_names_.begin(), pull_names_.end(), h) != pull_names_.end()) return;
        if (pull_names_.size() >= detail::docker::max_pull_names) return;
        pull_names_.push_back(h);
        emit(Kind::pulling, step_, std::string(name), std::nullopt, name.substr(5));
    }

    // ---- legacy builder ----

    void on_legacy_step(std::string_view rest) {  // after `Step `: `3/8 : WORKDIR /app`
        if (format_ == DockerLogFormat::buildkit_plain || format_ == DockerLogFormat::buildkit_tty) return;
        const auto index = detail::docker::take_int(rest);
        if (!index || rest.empty() || rest.front() != '/') return;
        rest.remove_prefix(1);
        const auto total = detail::docker::take_int(rest);
        if (!total || !detail::docker::starts_with(rest, " :") || *index < 1 || *index > *total || *total > 9999)
            return;
        if (legacy_step_ != no_step && steps_[legacy_step_].stage_total != *total) return;  // a RUN's own text
        if (format_ == DockerLogFormat::unknown) set_format(DockerLogFormat::legacy);
        if (legacy_step_ != no_step) finish_step(legacy_step_, false, std::nullopt);
        detail::docker::StepLabel label;
        label.index = *index;
        label.total = *total;
        label.instruction = detail::docker::trim_blanks(rest.substr(2));
        const std::size_t pos = open_step(label);
        if (pos == no_step) return;
        legacy_step_ = pos;
        legacy_in_container_ = false;
        stop_legacy_pull();
    }

    void on_legacy_arrow(std::string_view rest) {  // after ` ---> `
        const bool running_in = detail::docker::starts_with(rest, "Running in ");
        const bool removed = detail::docker::starts_with(rest, "Removed intermediate container ");
        const bool from_cache = rest == "Using cache";
        const bool committed = detail::docker::is_hex_id(rest);  // the image the step made: the step is done
        if (!running_in && !removed && !from_cache && !committed) return;
        if (format_ == DockerLogFormat::unknown) set_format(DockerLogFormat::legacy);
        legacy_in_container_ = running_in;
        if (removed) return;
        stop_legacy_pull();
        if (legacy_step_ == no_step) return;
        if (from_cache) finish_step(legacy_step_, true, std::nullopt);
        if (committed) finish_step(legacy_step_, false, std::nullopt);
    }

    void stop_legacy_pull() {
        if (legacy_pulling_) {
            legacy_pulling_ = false;
            changed_ = true;
        }
    }

    // `Successfully built <id>` and `Successfully tagged <name>`; pip also says `Successfully built
    // <package>`, inside a RUN and without an image id.
    void on_legacy_success(std::string_view what, bool is_image_id) {
        if (format_ == DockerLogFormat::buildkit_plain || format_ == DockerLogFormat::buildkit_tty) return;
        if (legacy_in_container_ || (is_image_id && !detail::docker::is_hex_id(what))) return;
        if (format_ == DockerLogFormat::unknown) set_format(DockerLogFormat::legacy);
        succeed_build(what);
    }

    void on_legacy_failure(std::string_view line) {
        if (format_ == DockerLogFormat::unknown) set_format(DockerLogFormat::legacy);
        fail_build(line, true);
    }

    // Lines the legacy builder itself prints between a step header and the step's container: pulls
    // of the image a FROM or COPY --from names, and the errors that end a COPY, ADD or FROM.
    void on_legacy_builder_message(std::string_view line) {
        if (detail::docker::starts_with(line, "COPY failed: ") || detail::docker::starts_with(line, "ADD failed: ") ||
            detail::docker::starts_with(line, "pull access denied for ") ||
            detail::docker::starts_with(line, "unable to prepare context: ")) {
            fail_build(line, true);
            return;
        }
        if (legacy_step_ == no_step || steps_[legacy_step_].done) return;
        const std::size_t at = line.find(": Pulling from ");
        if (at == std::string_view::npos || at == 0) return;
        legacy_pulling_ = true;
        const std::string image = std::string(line.substr(at + 15)) + ":" + std::string(line.substr(0, at));
        emit(Kind::pulling, steps_[legacy_step_].index, steps_[legacy_step_].instruction, std::nullopt, image);
    }

    // ---- state changes shared by every format ----

    void set_format(DockerLogFormat format) {
        format_ = format;
        changed_ = true;
    }

    void set_loading_context() {
        seen_docker_ = true;
        if (!loading_context_) {
            loading_context_ = true;
            changed_ = true;
        }
    }

    void start_exporting(std::string_view name) {
        finish_running_steps();
        exporting_active_ = true;
        exporting_seen_ = true;
        emit(Kind::exporting, step_, std::string(name), std::nullopt, {});
    }

    // The record of step `label`, created (and announced) the first time it appears; no_step when
    // the label contradicts its stage's known total or a bound is reached.
    std::size_t open_step(const detail::docker::StepLabel& label) {
        std::size_t stage = 0;
        while (stage < stages_.size() && stages_[stage].label != label.stage) ++stage;
        if (stage == stages_.size()) {
            if (stages_.size() >= detail::docker::max_stages) return no_step;
            Stage added;
            added.label = std::string(label.stage);
            added.total = label.total;
            added.offset = total_;
            stages_.push_back(std::move(added));
            total_ += label.total;
            changed_ = true;
        } else if (stages_[stage].total != label.total) {
            return no_step;
        }
        const auto key = std::make_pair(stage, label.index);
        if (const auto found = step_by_label_.find(key); found != step_by_label_.end()) return found->second;
        if (steps_.size() >= detail::docker::max_steps) return no_step;

        Stage& owner = stages_[stage];
        DockerStep step;
        step.index = owner.offset + label.index;
        step.instruction = detail::docker::bounded_text(label.instruction);
        step.stage = owner.label;
        step.stage_step = label.index;
        step.stage_total = label.total;
        if (timing_ == StepTiming::clock) step.started_at = now_;
        const std::size_t pos = steps_.size();
        steps_.push_back(std::move(step));
        tracks_.push_back(Track{stage, std::nullopt});
        step_by_label_.emplace(key, pos);
        if (label.index > owner.highest_seen) {
            step_ += label.index - owner.highest_seen;
            owner.highest_seen = label.index;
        }
        running_.push_back(pos);
        current_ = pos;
        emit(Kind::step_started, steps_[pos].index, steps_[pos].instruction, std::nullopt, {});
        return pos;
    }

    bool has_ended(std::size_t pos) const noexcept {
        const DockerStep& s = steps_[pos];
        return s.done || s.failed || s.cancelled;
    }

    void stop_running(std::size_t pos) {
        running_.erase(std::remove(running_.begin(), running_.end(), pos), running_.end());
        if (!running_.empty()) current_ = running_.back();
        if (timing_ == StepTiming::clock) steps_[pos].finished_at = now_;
    }

    std::optional<double> clock_duration(std::size_t pos) const noexcept {
        const DockerStep& s = steps_[pos];
        if (timing_ != StepTiming::clock || !s.started_at) return std::nullopt;
        return std::max(0.0, now_ - *s.started_at);
    }

    void finish_step(std::size_t pos, bool cached, std::optional<double> seconds) {
        if (has_ended(pos)) return;
        DockerStep& s = steps_[pos];
        s.done = true;
        s.cached = cached;
        if (!cached) s.duration = seconds ? seconds : clock_duration(pos);
        stop_running(pos);
        Stage& stage = stages_[tracks_[pos].stage];
        stage.highest_done = std::max(stage.highest_done, s.stage_step);
        update_progress();
        emit(cached ? Kind::step_cached : Kind::step_finished, s.index, s.instruction, s.duration, {});
    }

    void fail_step(std::size_t pos, std::string_view message, std::optional<double> seconds) {
        if (has_ended(pos)) return;
        DockerStep& s = steps_[pos];
        s.failed = true;
        s.duration = seconds ? seconds : clock_duration(pos);
        stop_running(pos);
        last_failed_ = pos;
        emit(Kind::step_failed, s.index, s.instruction, s.duration, message);
    }

    // Nothing runs once the image is being exported, or built.
    void finish_running_steps() {
        while (!running_.empty()) {
            const std::size_t pos = running_.front();
            finish_step(pos, false, tracks_[pos].shown_seconds);
        }
    }

    void cancel_step(std::size_t pos) {
        if (has_ended(pos)) return;
        steps_[pos].cancelled = true;
        stop_running(pos);
        changed_ = true;
    }

    void succeed_build(std::string_view what) {
        if (outcome_ != BuildOutcome::running) return;
        finish_running_steps();
        outcome_ = BuildOutcome::succeeded;
        exporting_active_ = false;
        active_pulls_ = 0;
        progress_ = 1.0;
        seen_docker_ = true;
        emit(Kind::build_succeeded, step_, {}, std::nullopt, what);
    }

    // `in_current_step`: the legacy builder's error belongs to the step it was running.
    void fail_build(std::string_view message, bool in_current_step) {
        if (outcome_ == BuildOutcome::failed) return;  // the first error is the cause; the rest follow from it
        if (in_current_step && legacy_step_ != no_step) fail_step(legacy_step_, message, std::nullopt);
        while (!running_.empty()) cancel_step(running_.back());
        outcome_ = BuildOutcome::failed;
        error_ = detail::docker::bounded_text(message);
        exporting_active_ = false;
        legacy_pulling_ = false;
        active_pulls_ = 0;
        seen_docker_ = true;
        const int where = last_failed_ != no_step ? steps_[last_failed_].index : step_;
        const std::string failed_instruction =
            last_failed_ != no_step ? steps_[last_failed_].instruction : std::string();
        emit(Kind::build_failed, where, failed_instruction, std::nullopt, message);
    }

    void update_progress() noexcept {
        int done = 0;
        for (const Stage& stage : stages_) done += stage.highest_done;
        if (total_ > 0) progress_ = std::max(progress_, std::min(1.0, static_cast<double>(done) / total_));
    }

    void emit(Kind kind, int step, std::string_view instruction, std::optional<double> seconds,
              std::string_view message) {
        if (events_.size() >= detail::docker::max_pending_events) {
            events_.pop_front();
            ++dropped_events_;
        }
        DockerStepEvent event;
        event.kind = kind;
        event.step = step;
        event.total = total_;
        event.instruction = detail::docker::bounded_text(instruction);
        event.seconds = seconds;
        event.message = detail::docker::bounded_text(message);
        events_.push_back(std::move(event));
        changed_ = true;
    }

    struct Track {
        std::size_t stage = 0;
        std::optional<double> shown_seconds;  // tty: the time last drawn beside the step
    };

    StepTiming timing_;
    DockerLogFormat format_ = DockerLogFormat::unknown;
    bool seen_docker_ = false;
    double now_ = 0.0;
    bool changed_ = false;

    std::vector<Stage> stages_;
    std::vector<DockerStep> steps_;
    std::vector<Track> tracks_;  // parallel to steps_
    std::map<std::pair<std::size_t, int>, std::size_t> step_by_label_;
    std::vector<std::size_t> running_;  // steps started and not ended, in the order they started
    std::optional<std::size_t> current_;
    std::size_t last_failed_ = no_step;
    int step_ = 0;
    int total_ = 0;
    double progress_ = 0.0;

    BuildOutcome outcome_ = BuildOutcome::running;
    std::string error_;
    bool loading_context_ = false;
    bool exporting_active_ = false;
    bool exporting_seen_ = false;
    int active_pulls_ = 0;

    std::deque<DockerStepEvent> events_;
    std::size_t dropped_events_ = 0;

    std::unordered_map<int, Vertex> vertices_;  // BuildKit plain: vertex number → what it is
    bool in_error_block_ = false;

    bool tty_finished_frame_ = false;
    std::size_t tty_last_step_ = no_step;
    std::vector<std::uint64_t> pull_names_;

    std::size_t legacy_step_ = no_step;
    bool legacy_in_container_ = false;
    bool legacy_pulling_ = false;

    std::string no_instruction_;
};

}  // namespace azops
