// azops/detail/operation_run.hpp — one operation of a task as the Tracker sees it: which parser
// reads its output, where it stands (step, phase, detail, fraction done) and its ETA estimator.
//
// Owns: choosing the parser by operation name (docker_build → DockerStepParser, windows_boot →
// BootLogParser, benchmark → WaaLogParser; any other operation watches for a docker build and
// becomes docker_build when one shows up), turning parser events into ETA observations, and what
// the finished operation records in the history file.
// Thread-safety: none; the Tracker guards it with its mutex. Errors: never throws on output text;
// a failure the output itself reports is kept in `output_error()`.
#pragma once

#include <algorithm>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <azops/boot_parser.hpp>
#include <azops/docker_parser.hpp>
#include <azops/eta.hpp>
#include <azops/history.hpp>
#include <azops/waa_parser.hpp>

namespace azops::detail {

class OperationRun {
public:
    // `planned_steps`: the steps the program announced; more than the output's own (a boot log's 7,
    // then the program's wait for a server as step 8) leaves the output that share of the progress.
    OperationRun(std::string name, const History* history, double t0, EtaOptions eta_options = {},
                 int planned_steps = 0)
        : name_(std::move(name)), history_(history), eta_options_(eta_options), planned_steps_(std::max(0, planned_steps)) {
        if (name_ == "windows_boot") boot_.emplace();
        else if (name_ == "benchmark") waa_.emplace();
        else docker_.emplace();  // docker_build, and any other command to recognise a docker build in its output
        eta_.emplace(history_, history_key(), eta_options_);
        eta_->start(t0);
        started_ = t0;
    }

    const std::string& name() const noexcept { return name_; }
    int step() const noexcept { return step_; }
    int total_steps() const noexcept { return total_; }
    const std::string& phase() const noexcept { return phase_; }
    const std::string& detail() const noexcept { return detail_; }
    double fraction() const noexcept { return fraction_; }
    double started() const noexcept { return started_; }
    const std::optional<std::string>& output_error() const noexcept { return output_error_; }
    // Benchmark tasks passed and failed so far, once a benchmark's output has shown a task result.
    std::optional<std::pair<int, int>> task_results() const {
        if (!waa_ || waa_->tasks_done() == 0) return std::nullopt;
        return std::make_pair(waa_->successes(), waa_->failures());
    }
    // True when the output (rather than the program) says where the operation stands.
    bool read_from_output() const noexcept { return from_output_; }

    // One sanitised output line at time `t`; returns true when the operation's state changed.
    bool feed(std::string_view line, double t) {
        eta_->sign_of_life(t);
        if (docker_) return feed_docker(line, t);
        if (boot_) return feed_boot(line, t);
        if (waa_) return feed_waa(line, t);
        return false;
    }

    // The program says: step `step` of `total` started.
    void step_started(int step, int total, double t) {
        if (step_ > 0 && step > step_) eta_->step_finished(step_, t);
        total_ = std::max(0, total);
        step_ = std::max(0, step);
        eta_->step_started(step_, total_, t);
        if (total_ > 0) raise_fraction(static_cast<double>(std::max(0, step_ - 1)) / total_);
    }

    // The program says: `fraction` (0..1) of this operation is done.
    void progress(double fraction, double t) {
        raise_fraction(fraction);
        eta_->progress(fraction_, t);
    }

    void set_phase(std::string phase) { phase_ = std::move(phase); }
    void set_detail(std::string detail) { detail_ = std::move(detail); }

    EtaEstimate estimate(double now) const { return eta_->estimate(now); }
    std::optional<double> stalled_seconds(double now) const { return eta_->stalled_seconds(now); }
    std::optional<double> last_sign_of_life() const { return eta_->last_sign_of_life(); }

    // Records this finished (succeeded) operation in the history file, under its own name: its
    // per-step durations when every step was seen (adding up to its whole duration), else its
    // duration as one sample; a benchmark records each task under benchmark_per_task. Returns
    // what went wrong, if anything.
    std::optional<std::string> record(const std::filesystem::path& history_file, double ended) {
        HistoryFileResult result;
        if (waa_) {
            const std::vector<double> tasks = eta_->task_seconds();
            if (tasks.empty()) return std::nullopt;
            result = History::update_file(history_file, [&](History& h) {
                for (double s : tasks) h.record_task(benchmark_task_key, s);
            });
        } else if (const auto run = eta_->finished_run(ended)) {
            result = History::record_to_file(history_file, name_, run->step_seconds, run->cached_steps);
        } else if (total_ > 1) {
            result = History::record_task_to_file(history_file, name_, std::max(0.0, ended - started_));
        } else {
            result = History::record_to_file(history_file, name_, {std::max(0.0, ended - started_)});
        }
        if (!result.ok) return "history not updated: " + result.error;
        return std::nullopt;
    }

private:
    std::string history_key() const { return waa_ ? std::string(benchmark_task_key) : name_; }

    void raise_fraction(double f) { fraction_ = std::max(fraction_, std::clamp(f, 0.0, 1.0)); }

    bool feed_docker(std::string_view line, double t) {
        if (!docker_->feed(line, t)) return false;
        if (!docker_->is_docker_build()) return false;
        if (name_ != "docker_build") become_docker_build(t);
        from_output_ = true;
        for (const DockerStepEvent& e : docker_->take_events()) {
            using Kind = DockerStepEvent::Kind;
            if (e.step <= 0) continue;
            if (e.kind == Kind::step_started) eta_->step_started(e.step, e.total, t);
            else if (e.kind == Kind::step_cached) eta_->step_finished(e.step, t, true);
            else if (e.kind == Kind::step_finished || e.kind == Kind::step_failed) eta_->step_finished(e.step, t);
        }
        step_ = docker_->step();
        total_ = docker_->total_steps();
        phase_ = docker_->phase();
        detail_ = docker_->instruction();
        raise_fraction(docker_->progress_fraction());
        output_error_ = docker_->outcome() == BuildOutcome::failed
                            ? std::optional<std::string>(docker_->error().empty() ? "the docker build failed"
                                                                                  : docker_->error())
                            : std::nullopt;
        return true;
    }

    // A command's output turned out to be a docker build: from now on it is one, with that history.
    void become_docker_build(double t) {
        name_ = "docker_build";
        eta_.emplace(history_, name_, eta_options_);
        eta_->start(started_);
        eta_->sign_of_life(t);
    }

    bool feed_boot(std::string_view line, double t) {
        if (!boot_->feed(line)) return false;
        from_output_ = true;
        const int step = boot_->step();
        const int total = std::max(boot_->total_steps(), planned_steps_);
        if (step > step_) step_started(step, total, t);
        phase_ = boot_->phase_name();
        detail_ = boot_->detail();
        raise_fraction(boot_->progress_fraction() * boot_->total_steps() / total);
        output_error_ = boot_->error();
        return true;
    }

    bool feed_waa(std::string_view line, double t) {
        if (!waa_->feed(line)) return false;
        from_output_ = true;
        waa_->take_events();  // the counts below say all the estimator needs
        total_ = waa_->total_tasks();
        step_ = total_ > 0 ? std::min(total_, waa_->current_task_index()) : waa_->current_task_index();
        if (total_ > 0) eta_->task_progress(waa_->tasks_done(), total_, t);
        phase_ = waa_->phase_name();
        detail_ = waa_->detail();
        raise_fraction(waa_->progress_fraction());
        output_error_ = waa_->error();
        return true;
    }

    std::string name_;
    const History* history_;
    EtaOptions eta_options_;
    int planned_steps_;
    std::optional<DockerStepParser> docker_;
    std::optional<BootLogParser> boot_;
    std::optional<WaaLogParser> waa_;
    std::optional<EtaEstimator> eta_;
    double started_ = 0;
    int step_ = 0;
    int total_ = 0;
    std::string phase_;
    std::string detail_;
    double fraction_ = 0;
    bool from_output_ = false;
    std::optional<std::string> output_error_;
};

}  // namespace azops::detail
