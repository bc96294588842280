// azops/eta.hpp — remaining time from history and from observed progress, and stall detection.
//
// Owns: azops::EtaEstimator and azops::StallDetector. Time is injected: every call takes seconds on
// any monotonic clock the caller chooses (the same clock for one estimator).
// How the estimate is made, in order of preference:
//  - steps with history ("history"): past runs with this run's number of steps (or, if the
//    Dockerfile gained or lost a step or two, the nearest count, shifted past the place where the
//    finished steps' durations say the change lies) give each step's typical duration and
//    spread; a step history only ever took from the cache says nothing of its real length. What
//    is left is scaled by this run's speed against history: a precision-weighted mean of
//    ln(actual / typical) over the finished, uncached steps (a cached step takes ~0 s whatever it
//    took before), shrunk toward 1 so a few noisy seconds cannot swing it. The current step's
//    time left is the lognormal expectation given how long it has run, so a step longer than all
//    of history still has time left. As ninja does, once some work is done (15 s and 5 % of the
//    expected work) the run must stay within a sane factor (5x) of history, or history is dropped.
//  - tasks (`task_progress`, e.g. a benchmark under "benchmark_per_task"): history's mean task
//    time counts as a few finished tasks beside the ones this run has finished ("blend").
//  - no per-step history: the operation's average blended with the run's own pace ("blend"), or
//    the run's own pace alone ("progress"); `progress(fraction)` feeds operations without steps.
//  - nothing that supports an estimate: std::nullopt and "none". The estimate is never negative.
// The range (10th-90th percentile) comes from the spread of past runs and what is not yet known
// of this run's speed. bench/eta_accuracy.cpp measures all of this against replayed runs.
// Thread-safety: plain value; the owner locks (the Tracker does). Errors: nothing throws except
// std::bad_alloc; nonsense input (NaN times, step 0, totals that change, steps that go back) is
// absorbed and documented at each call.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <azops/history.hpp>

namespace azops {

struct EtaOptions {
    double trust_min_seconds = 15;        // history is checked against this run only after this long...
    double trust_min_fraction = 0.05;     // ...and after this share of the expected work (ninja's rule)
    double max_history_factor = 5;        // a run this many times faster or slower is not comparable
    int max_step_difference = 2;          // past runs with this many more or fewer steps still compare
    double speed_spread = 0.3;            // prior spread of ln(this run's speed / history's)
    double prior_tasks = 3;               // task mode: history's mean weighs as this many finished tasks
    double stall_min_seconds = 300;       // never call a step stalled before 5 minutes of silence
    double stall_step_factor = 3;         // nor before 3x what history says the current step takes
};

struct EtaRange {
    double low = 0;
    double high = 0;
};

struct EtaEstimate {
    std::optional<double> seconds;
    std::string source = "none";  // history, progress, blend, none
    std::optional<EtaRange> range;
};

// Says how long a task has been silent once the silence is much longer than its current step
// normally takes: max(min_seconds, step_factor x typical step).
class StallDetector {
public:
    explicit StallDetector(double min_seconds = 300, double step_factor = 3) noexcept
        : min_seconds_(min_seconds), step_factor_(step_factor) {}

    // Output or progress came at `t`.
    void sign_of_life(double t) noexcept {
        if (std::isfinite(t) && (!last_ || t > *last_)) last_ = t;
    }

    std::optional<double> last_sign_of_life() const noexcept { return last_; }

    double threshold(std::optional<double> typical_step_seconds) const noexcept {
        return std::max(min_seconds_, step_factor_ * typical_step_seconds.value_or(0.0));
    }

    std::optional<double> stalled_seconds(double now, std::optional<double> typical_step_seconds) const noexcept {
        if (!last_ || !std::isfinite(now)) return std::nullopt;
        const double silent = now - *last_;
        return silent > threshold(typical_step_seconds) ? std::optional<double>(silent) : std::nullopt;
    }

private:
    double min_seconds_;
    double step_factor_;
    std::optional<double> last_;
};

namespace detail::eta {

inline double median_of(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const std::size_t n = v.size();
    return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2.0;
}

// Linear-interpolated quantile of a non-empty list.
inline double quantile_of(std::vector<double> v, double q) {
    std::sort(v.begin(), v.end());
    const double pos = q * static_cast<double>(v.size() - 1);
    const auto lo = static_cast<std::size_t>(std::floor(pos));
    const std::size_t hi = std::min(lo + 1, v.size() - 1);
    return v[lo] + (v[hi] - v[lo]) * (pos - static_cast<double>(lo));
}

// The spread of past runs as a range around `eta`: the 10th and 90th percentile of `ratios`
// (past remaining / typical remaining), widened while fewer than three runs support it.
inline EtaRange range_from_ratios(double eta, const std::vector<double>& ratios) {
    double low = std::min(1.0, quantile_of(ratios, 0.1));
    double high = std::max(1.0, quantile_of(ratios, 0.9));
    if (ratios.size() < 3) {
        low = std::min(low, 0.8);
        high = std::max(high, 1.25);
    }
    return {eta * low, eta * high};
}

// Expected time left of a step that has run `elapsed` seconds and whose duration is lognormal
// with this median and log-spread: E[X - e | X > e]. Early on it is about the mean minus the
// elapsed time; past the median it shrinks slowly instead of reaching 0, so a step that runs
// longer than all of history still has time left.
inline double lognormal_time_left(double median, double sigma, double elapsed) {
    if (median <= 0) return 0.0;
    const double mean = median * std::exp(sigma * sigma / 2);
    if (elapsed <= 0) return mean;
    const double mu = std::log(median);
    const double z = (std::log(elapsed) - mu) / sigma;
    if (z > 8) return elapsed * sigma * sigma / (std::log(elapsed) - mu);  // asymptotic form
    const auto upper_tail = [](double x) { return 0.5 * std::erfc(x / std::sqrt(2.0)); };
    const double survive = upper_tail(z);
    return std::max(0.0, mean * upper_tail(z - sigma) / survive - elapsed);
}

// Spread (sd of the log) of a step's past durations. A few runs say little about it, so the
// estimate is pulled toward `usual` as if two more runs had shown that spread.
inline double log_spread(const std::vector<double>& samples, double usual) {
    std::vector<double> logs;
    for (double s : samples) {
        if (s > 0) logs.push_back(std::log(s));
    }
    double mean = 0;
    for (double l : logs) mean += l;
    if (!logs.empty()) mean /= static_cast<double>(logs.size());
    double squares = 0;
    for (double l : logs) squares += (l - mean) * (l - mean);
    const double pseudo_runs = 2;
    const double dof = logs.empty() ? 0.0 : static_cast<double>(logs.size() - 1);
    return std::sqrt((squares + pseudo_runs * usual * usual) / (dof + pseudo_runs));
}

}  // namespace detail::eta

class EtaEstimator {
public:
    // `history` may be null (no history); what the estimator needs of it is copied here, so later
    // changes to it are not seen. `operation` is the history entry: "docker_build", or
    // `benchmark_task_key` for a benchmark fed through `task_progress`.
    EtaEstimator(const History* history, std::string_view operation, EtaOptions options = {})
        : options_(options), stall_(options.stall_min_seconds, options.stall_step_factor) {
        if (history != nullptr) past_ = history->operation(operation).value_or(OperationHistory{});
    }

    // The operation started at `t0`; the first other call starts it too if this one is skipped.
    void start(double t0) {
        if (!std::isfinite(t0)) return;
        if (!t0_) t0_ = t0;
        seen(t0);
    }

    // Step `step` (1-based) of `total` started. Step 0 means "not started yet"; total 0 means the
    // total is unknown. A new total starts the step record afresh (another stage or Dockerfile); a
    // step number lower than the current one means those steps run again.
    void step_started(int step, int total, double t) {
        if (!begin_call(t)) return;
        mode_ = Mode::steps;
        if (step <= 0) return;
        set_total(total, step);
        if (step < current_) {
            for (std::size_t i = static_cast<std::size_t>(step) - 1; i < steps_.size(); ++i) steps_[i] = {};
        }
        for (int i = 1; i < step; ++i) {
            StepObs& s = obs(i);
            if (s.start && !s.end) s.end = t;
        }
        StepObs& s = obs(step);
        s = {};
        s.start = t;
        current_ = step;
    }

    // Step `step` finished at `t`; `cached` when it came from the build cache.
    void step_finished(int step, double t, bool cached = false) {
        if (!begin_call(t)) return;
        mode_ = Mode::steps;
        if (step <= 0) return;
        set_total(total_, step);
        StepObs& s = obs(step);
        if (!s.start) s.start = std::min(t, last_boundary(step));
        s.end = t;
        s.cached = cached;
        if (step >= current_) current_ = step + 1;
    }

    // `finished` of `total` tasks are done (tasks run one after another).
    void task_progress(int finished, int total, double t) {
        if (!begin_call(t)) return;
        mode_ = Mode::tasks;
        tasks_total_ = std::max(0, total);
        finished = std::max(0, finished);
        if (tasks_total_ > 0) finished = std::min(finished, tasks_total_);
        if (finished > tasks_done_) {
            // Several tasks reported at once share the time since the last report.
            const double each = (t - last_task_change_.value_or(*t0_)) / (finished - tasks_done_);
            for (int i = tasks_done_; i < finished; ++i) task_seconds_.push_back(each);
            last_task_change_ = t;
        } else if (finished < tasks_done_) {
            task_seconds_.resize(static_cast<std::size_t>(finished));
            last_task_change_ = t;
        }
        tasks_done_ = finished;
    }

    // Plain progress for operations without steps: `fraction` of the work (0..1) is done.
    void progress(double fraction, double t) {
        if (!std::isfinite(fraction) || !begin_call(t)) return;
        mode_ = Mode::percent;
        fraction_ = std::clamp(fraction, 0.0, 1.0);
    }

    // Output came (a log line) without progress; only the stall detector hears of it.
    void sign_of_life(double t) { stall_.sign_of_life(t); }

    // The estimate at `now`; `source()` then tells where it came from.
    std::optional<double> eta_seconds(double now) {
        last_ = estimate(now);
        return last_.seconds;
    }

    const std::string& source() const noexcept { return last_.source; }

    // Low and high remaining seconds from the spread of past runs; nullopt without history.
    std::optional<std::pair<double, double>> eta_range(double now) const {
        const auto e = estimate(now);
        if (!e.range) return std::nullopt;
        return std::make_pair(e.range->low, e.range->high);
    }

    EtaEstimate estimate(double now) const {
        if (!t0_) return {};
        now = std::isfinite(now) ? std::max(now, last_seen_) : last_seen_;
        switch (mode_) {
            case Mode::steps: return steps_estimate(now);
            case Mode::tasks: return tasks_estimate(now);
            case Mode::percent: return percent_estimate(now);
            case Mode::none: break;
        }
        return average_only(now);
    }

    // What history says the current step (or task) takes at this run's pace (from finished steps:
    // the current step's own overrun must not raise its stall threshold); nullopt if unknown.
    std::optional<double> typical_step_seconds(double now) const {
        if (!t0_) return std::nullopt;
        now = std::isfinite(now) ? std::max(now, last_seen_) : last_seen_;
        if (mode_ == Mode::steps) {
            const auto p = step_plan(now);
            if (p && p->comparable && p->has(p->past_current)) {
                return p->finished_scale * p->typical[static_cast<std::size_t>(p->past_current)];
            }
        } else if (mode_ == Mode::tasks) {
            if (const auto m = task_mean()) return m->seconds;
        }
        return std::nullopt;
    }

    std::optional<double> last_sign_of_life() const noexcept { return stall_.last_sign_of_life(); }

    // How long the task has been silent, once that is much longer than its current step takes.
    std::optional<double> stalled_seconds(double now) const {
        return stall_.stalled_seconds(now, typical_step_seconds(now));
    }

    // This run's steps for History::record, once every step has finished; nullopt before.
    std::optional<PastRun> finished_run() const {
        if (total_ <= 0 || static_cast<int>(steps_.size()) < total_) return std::nullopt;
        PastRun run;
        for (int i = 1; i <= total_; ++i) {
            const StepObs& s = steps_[static_cast<std::size_t>(i) - 1];
            if (!s.start || !s.end) return std::nullopt;
            run.step_seconds.push_back(*s.end - *s.start);
            if (s.cached) run.cached_steps.push_back(i);
        }
        return run;
    }

    // Seconds of each finished task, for History::record_task.
    const std::vector<double>& task_seconds() const noexcept { return task_seconds_; }

private:
    enum class Mode { none, steps, tasks, percent };

    struct StepObs {
        std::optional<double> start;
        std::optional<double> end;
        bool cached = false;
    };

    // Per-step history matched to this run, and where the run stands against it. Indexes are
    // the past runs' steps (0-based), which differ from this run's when the step count changed.
    struct StepPlan {
        std::vector<const PastRun*> runs;
        std::vector<double> typical;  // per past step, seconds when not cached
        std::vector<bool> known;      // history has an uncached duration of the step
        std::vector<double> spread;   // per past step, sd of log(duration) across past runs
        double typical_total = 0;
        int shift = 0;                // this run's steps minus the past runs'
        int change_at = 0;            // this run's first step (0-based) after the change, or total
        int current = 1;              // this run's first step not done (total + 1 when all are)
        int past_current = 0;         // the past step it matches; out of range when none does
        double current_elapsed = 0;
        double scale = 1;             // this run's seconds per typical second
        double finished_scale = 1;    // the same from finished steps only (the stall threshold's)
        double speed_variance = 0;    // how unsure ln(scale) still is
        double spread_inflation = 1;  // how much more this run's steps vary than history's
        double evidence = 0;          // typical seconds of finished, uncached steps
        bool comparable = true;

        bool has(int j) const noexcept { return j >= 0 && j < static_cast<int>(typical.size()); }
        // The past step matching this run's step `i` (0-based) if the change lies at `at`; -1 for
        // a step the past runs did not have.
        int past_step(int i, int at) const noexcept {
            if (i < at) return i;
            if (shift > 0 && i < at + shift) return -1;
            return i - shift;
        }
        double typical_from(int j) const {
            double sum = 0;
            for (int k = std::max(j, 0); k < static_cast<int>(typical.size()); ++k) {
                sum += typical[static_cast<std::size_t>(k)];
            }
            return sum;
        }
    };

    bool begin_call(double t) {
        if (!std::isfinite(t)) return false;
        start(t);
        seen(t);
        stall_.sign_of_life(t);
        return true;
    }

    void seen(double t) { last_seen_ = std::max(last_seen_, t); }

    // A new reported total is another build (or stage): its steps are not this one's.
    void set_total(int total, int step) {
        if (total > 0) {
            if (reported_total_ > 0 && total != reported_total_) {
                steps_.clear();
                current_ = 0;
                total_ = 0;
            }
            reported_total_ = total;
            total_ = std::max(total_, total);
        }
        if (total_ > 0) total_ = std::max(total_, step);
    }

    StepObs& obs(int step) {
        if (static_cast<int>(steps_.size()) < step) steps_.resize(static_cast<std::size_t>(step));
        return steps_[static_cast<std::size_t>(step) - 1];
    }

    // When step `step` can have started at the latest: the last end before it, or t0.
    double last_boundary(int step) const {
        double at = *t0_;
        for (int i = 1; i < step && i <= static_cast<int>(steps_.size()); ++i) {
            const auto& s = steps_[static_cast<std::size_t>(i) - 1];
            if (s.end) at = std::max(at, *s.end);
        }
        return at;
    }

    bool step_done(int i) const {
        if (i > static_cast<int>(steps_.size())) return false;
        const auto& s = steps_[static_cast<std::size_t>(i) - 1];
        return s.end.has_value() || (i < current_ && !s.start);
    }

    int first_open_step() const {
        int c = std::max(current_, 1);
        while (step_done(c)) ++c;
        return c;
    }

    int steps_done() const {
        int n = 0;
        for (int i = 1; i <= total_; ++i) n += step_done(i) ? 1 : 0;
        return n;
    }

    // Past runs to compare with: those with this run's number of steps, else those that differ
    // by a step or two (the Dockerfile changed a little): the nearest count, and of two equally
    // near counts the one more runs had.
    std::vector<const PastRun*> comparable_runs() const {
        const auto with_steps = [&](int count) {
            std::vector<const PastRun*> runs;
            for (const auto& r : past_.recent_runs) {
                if (static_cast<int>(r.step_seconds.size()) == count) runs.push_back(&r);
            }
            return runs;
        };
        for (int diff = 0; diff <= options_.max_step_difference; ++diff) {
            auto fewer = with_steps(total_ - diff);
            auto more = diff > 0 ? with_steps(total_ + diff) : std::vector<const PastRun*>{};
            if (!fewer.empty() || !more.empty()) return more.size() > fewer.size() ? more : fewer;
        }
        return {};
    }

    // Duration of this run's finished, uncached step `i` (0-based), if it has one.
    std::optional<double> finished_seconds(int i) const {
        if (i < 0 || i >= static_cast<int>(steps_.size())) return std::nullopt;
        const auto& s = steps_[static_cast<std::size_t>(i)];
        if (!s.start || !s.end || s.cached) return std::nullopt;
        return *s.end - *s.start;
    }

    // With another step count, where did the change happen? Each place among the finished steps
    // is tried (steps before it match the past steps of the same number, steps after it are
    // shifted by the difference, inserted steps match nothing and cost one e-fold each), and so is
    // "not reached yet"; the place whose matches fit the finished steps' durations best wins.
    int change_position(const StepPlan& p) const {
        const int shift = p.shift;
        if (shift == 0) return total_;
        const int finished = p.current - 1;
        const auto misfit = [&](int change_at) {
            double sum = 0;
            for (int i = 0; i < finished; ++i) {
                const int j = p.past_step(i, change_at);
                if (j < 0) {
                    sum += 1.0;
                    continue;
                }
                const auto seconds = finished_seconds(i);
                if (!seconds || *seconds <= 0 || !p.has(j)) continue;
                const double typical = p.typical[static_cast<std::size_t>(j)];
                sum += typical > 0 ? std::abs(std::log(*seconds / typical)) : 10.0;  // 10: e^10 off
            }
            return sum;
        };
        int best = total_;
        double best_misfit = misfit(total_);
        for (int change_at = 0; change_at < finished; ++change_at) {
            const double m = misfit(change_at);
            if (m < best_misfit) {
                best = change_at;
                best_misfit = m;
            }
        }
        return best;
    }

    std::optional<StepPlan> step_plan(double now) const {
        if (total_ <= 0) return std::nullopt;
        StepPlan p;
        p.runs = comparable_runs();
        if (p.runs.empty()) return std::nullopt;
        const std::size_t past_steps = p.runs.front()->step_seconds.size();
        for (std::size_t j = 0; j < past_steps; ++j) {
            std::vector<double> uncached, all;
            for (const PastRun* r : p.runs) {
                all.push_back(r->step_seconds[j]);
                if (!r->cached(static_cast<int>(j) + 1)) uncached.push_back(r->step_seconds[j]);
            }
            // A step that history only ever took from the cache has no known uncached duration:
            // its cached time stands in, and it says nothing about this run's speed.
            p.typical.push_back(detail::eta::median_of(uncached.empty() ? all : uncached));
            p.known.push_back(!uncached.empty());
            p.spread.push_back(std::clamp(detail::eta::log_spread(uncached, 0.25), 0.05, 1.0));
            p.typical_total += p.typical.back();
        }
        if (p.typical_total <= 0) return std::nullopt;
        p.current = first_open_step();
        if (p.current <= total_) p.current_elapsed = std::max(0.0, now - current_start(p.current));
        p.shift = total_ - static_cast<int>(past_steps);
        p.change_at = change_position(p);
        p.past_current = p.current <= total_ ? p.past_step(p.current - 1, p.change_at) : static_cast<int>(past_steps);

        // This run's speed against history, in logs: every finished, uncached step is one
        // measurement, weighted by how steady that step is across past runs; the prior (speed 1,
        // spread `speed_spread`) keeps a few noisy seconds from swinging it.
        double weighted = 0, weights = 0, actual = 0;
        std::vector<std::pair<double, double>> measured;  // ln(actual / typical), spread
        const auto measure = [&](int j, double seconds) {
            const auto k = static_cast<std::size_t>(j);
            if (!p.has(j) || !p.known[k] || p.typical[k] <= 0 || seconds <= 0) return false;
            const double w = 1.0 / (p.spread[k] * p.spread[k]);
            const double y = std::log(seconds / p.typical[k]);
            weighted += w * y;
            weights += w;
            measured.emplace_back(y, p.spread[k]);
            return true;
        };
        for (int i = 0; i + 1 < p.current; ++i) {
            const auto seconds = finished_seconds(i);
            const int j = p.past_step(i, p.change_at);
            if (seconds && measure(j, *seconds)) {
                actual += *seconds;
                p.evidence += p.typical[static_cast<std::size_t>(j)];
            }
        }
        const double prior = 1.0 / (options_.speed_spread * options_.speed_spread);
        p.scale = std::exp(weighted / (weights + prior));
        p.finished_scale = p.scale;
        p.speed_variance = 1.0 / (weights + prior);
        // A step already longer than expected is evidence too: the run is at least that slow.
        const double current_typical = p.has(p.past_current) ? p.typical[static_cast<std::size_t>(p.past_current)] : 0;
        if (p.current_elapsed > p.scale * current_typical && measure(p.past_current, p.current_elapsed)) {
            p.scale = std::exp(weighted / (weights + prior));
            p.speed_variance = 1.0 / (weights + prior);
        }
        // Steps of this run that stray from one common speed more than history's spreads allow
        // (say, its network is slow but its CPU fast) widen the range of the steps left.
        double squares = 0;
        for (const auto& [y, spread] : measured) squares += std::pow((y - std::log(p.scale)) / spread, 2);
        p.spread_inflation = std::max(1.0, (squares + 2.0) / (static_cast<double>(measured.size()) + 2.0));
        const bool enough = now - *t0_ >= options_.trust_min_seconds &&
                            p.evidence >= options_.trust_min_fraction * p.typical_total && p.evidence > 0;
        if (enough) {
            const double ratio = actual / p.evidence;
            p.comparable = ratio <= options_.max_history_factor && ratio >= 1.0 / options_.max_history_factor;
        }
        return p;
    }

    double current_start(int step) const {
        if (step <= static_cast<int>(steps_.size())) {
            const auto& s = steps_[static_cast<std::size_t>(step) - 1];
            if (s.start) return *s.start;
        }
        return last_boundary(step);
    }

    EtaEstimate steps_estimate(double now) const {
        const auto p = step_plan(now);
        if (!p) return total_ > 0 ? average_blend(now) : average_only(now);
        if (!p->comparable) return own_pace(now);
        EtaEstimate e;
        e.source = "history";
        if (p->current > total_) {
            e.seconds = 0.0;
            return e;
        }
        // The current step (if the past runs had it) from its elapsed time, then every past step
        // after the one it matches (or, for a new step, after the ones before it).
        const int jc = p->past_current;
        int first_left = p->has(jc) ? jc : static_cast<int>(p->typical.size());
        for (int i = p->current; !p->has(jc) && i < total_; ++i) {
            const int j = p->past_step(i, p->change_at);
            if (j >= 0) {
                first_left = j;
                break;
            }
        }
        double left = 0;
        if (p->has(jc)) {
            const auto k = static_cast<std::size_t>(jc);
            left = detail::eta::lognormal_time_left(p->scale * p->typical[k], p->spread[k], p->current_elapsed);
        }
        left += p->scale * p->typical_from(p->has(jc) ? jc + 1 : first_left);
        e.seconds = left;

        // Range: the spread past runs show for each step left, plus what is not yet known of
        // this run's speed, as the 10th-90th percentile of a lognormal around the estimate.
        double typical_left = 0, step_variance = 0;
        for (int j = first_left; j < static_cast<int>(p->typical.size()); ++j) {
            const auto k = static_cast<std::size_t>(j);
            typical_left += p->typical[k];
            step_variance += std::pow(p->typical[k] * p->spread[k], 2);
        }
        if (typical_left > 0) {
            const double sigma = std::sqrt(p->speed_variance +
                                           p->spread_inflation * step_variance / (typical_left * typical_left));
            e.range = EtaRange{left * std::exp(-1.2816 * sigma), left * std::exp(1.2816 * sigma)};
        }
        return e;
    }

    // The run's own pace: the mean time of the steps done so far for each step left.
    std::optional<double> own_pace_seconds(double now) const {
        const int done = steps_done();
        if (total_ <= 0 || done <= 0) return std::nullopt;
        const int c = first_open_step();
        if (c > total_) return 0.0;
        const double mean = (last_boundary(c) - *t0_) / done;
        const double elapsed = std::max(0.0, now - current_start(c));
        return mean * (total_ - done - 1) + std::max(0.0, mean - elapsed);
    }

    EtaEstimate own_pace(double now) const {
        EtaEstimate e;
        e.seconds = own_pace_seconds(now);
        if (e.seconds) e.source = "progress";
        return e;
    }

    // Spread of the operation's past totals around their mean, as a range around `eta`.
    std::optional<EtaRange> average_range(double eta) const {
        if (!past_.avg_seconds || *past_.avg_seconds <= 0 || past_.recent_seconds.size() < 2) return std::nullopt;
        std::vector<double> ratios;
        for (double s : past_.recent_seconds) ratios.push_back(s / *past_.avg_seconds);
        return detail::eta::range_from_ratios(eta, ratios);
    }

    // History's average alone: what is left of it. Nothing once the run has outlasted it.
    EtaEstimate average_only(double now) const {
        EtaEstimate e;
        if (!past_.avg_seconds) return e;
        const double left = *past_.avg_seconds - (now - *t0_);
        if (left <= 0) return e;
        e.seconds = left;
        e.source = "history";
        e.range = average_range(left);
        return e;
    }

    // Steps without matching per-step history: the average, trusted less as the run's own pace
    // covers more of its steps.
    EtaEstimate average_blend(double now) const {
        const auto pace = own_pace_seconds(now);
        if (!past_.avg_seconds) return own_pace(now);
        if (!pace) return average_only(now);
        const double share = static_cast<double>(steps_done()) / total_;
        const double from_average = std::max(0.0, *past_.avg_seconds - (now - *t0_));
        EtaEstimate e;
        e.seconds = (1 - share) * from_average + share * *pace;
        e.source = "blend";
        e.range = average_range(*e.seconds);
        return e;
    }

    struct TaskMean {
        double seconds = 0;
        bool from_history = false;  // history's mean is part of it
    };

    std::optional<double> history_task_mean() const {
        if (past_.avg_seconds && *past_.avg_seconds > 0) return past_.avg_seconds;
        return std::nullopt;
    }

    // Mean task time for this run: the finished tasks' mean, with history's counting as a few more
    // tasks while the run stays within a sane factor of it.
    std::optional<TaskMean> task_mean() const {
        double sum = 0;
        for (double s : task_seconds_) sum += s;
        const auto k = static_cast<double>(task_seconds_.size());
        auto hist = history_task_mean();
        if (hist && k >= 3) {
            const double ratio = (sum / k) / *hist;
            if (ratio > options_.max_history_factor || ratio < 1.0 / options_.max_history_factor) hist.reset();
        }
        if (hist) return TaskMean{(sum + options_.prior_tasks * *hist) / (k + options_.prior_tasks), true};
        if (k > 0) return TaskMean{sum / k, false};
        return std::nullopt;
    }

    EtaEstimate tasks_estimate(double now) const {
        EtaEstimate e;
        const auto mean = task_mean();
        if (!mean || tasks_total_ <= 0) return e;
        e.source = !mean->from_history ? "progress" : task_seconds_.empty() ? "history" : "blend";
        const int left_tasks = tasks_total_ - tasks_done_;
        if (left_tasks <= 0) {
            e.seconds = 0.0;
            return e;
        }
        const double in_current = now - last_task_change_.value_or(*t0_);
        e.seconds = std::max(0.0, mean->seconds - in_current) + (left_tasks - 1) * mean->seconds;

        // Spread: of past tasks (at this run's pace) if history has them, else of this run's.
        std::vector<double> spread = past_.recent_seconds;
        double spread_scale = mean->from_history ? mean->seconds / *history_task_mean() : 1.0;
        if (!mean->from_history || spread.size() < 2) {
            spread = task_seconds_;
            spread_scale = 1.0;
        }
        if (spread.size() >= 2) {
            double m = 0;
            for (double s : spread) m += s;
            m /= static_cast<double>(spread.size());
            double var = 0;
            for (double s : spread) var += (s - m) * (s - m);
            const double sd = std::sqrt(var / static_cast<double>(spread.size() - 1)) * spread_scale;
            // Each task left varies by sd; the mean itself is known from k (+ prior) tasks.
            const double n = left_tasks;
            const double known = static_cast<double>(task_seconds_.size()) +
                                 (mean->from_history ? options_.prior_tasks : 0.0);
            const double sd_left = std::sqrt(n * sd * sd + n * n * sd * sd / std::max(known, 1.0));
            e.range = EtaRange{std::max(0.0, *e.seconds - 1.2816 * sd_left), *e.seconds + 1.2816 * sd_left};
        }
        return e;
    }

    // Plain progress: the run's pace (elapsed / fraction), blended with history's average while
    // little is done.
    EtaEstimate percent_estimate(double now) const {
        const double elapsed = now - *t0_;
        if (fraction_ >= 1.0) {
            EtaEstimate e;
            e.seconds = 0.0;
            e.source = past_.avg_seconds ? "blend" : "progress";
            return e;
        }
        if (fraction_ <= 0.0 || elapsed <= 0) return average_only(now);
        const double pace = elapsed * (1 - fraction_) / fraction_;
        EtaEstimate e;
        if (!past_.avg_seconds) {
            e.seconds = pace;
            e.source = "progress";
            return e;
        }
        const double from_average = *past_.avg_seconds * (1 - fraction_);
        e.seconds = (1 - fraction_) * from_average + fraction_ * pace;
        e.source = "blend";
        e.range = average_range(*e.seconds);
        return e;
    }

    EtaOptions options_;
    OperationHistory past_;
    StallDetector stall_;
    Mode mode_ = Mode::none;
    std::optional<double> t0_;
    double last_seen_ = -std::numeric_limits<double>::infinity();
    // steps
    int total_ = 0;
    int reported_total_ = 0;
    int current_ = 0;
    std::vector<StepObs> steps_;
    // tasks
    int tasks_total_ = 0;
    int tasks_done_ = 0;
    std::optional<double> last_task_change_;
    std::vector<double> task_seconds_;
    // percent
    double fraction_ = 0;
    EtaEstimate last_;
};

}  // namespace azops
