// azops/eta.hpp — remaining time from history and from observed progress, and stall detection.
//
// Owns: azops::EtaEstimator and azops::StallDetector. Time is injected: every call takes seconds on
// any monotonic clock the caller chooses (the same clock for one estimator).
// How the estimate is made, in order of preference:
//  - steps with history ("history"): past runs with this run's number of steps (or, if the
//    Dockerfile gained or lost a step or two, the nearest count, shifted past the place where the
//    finished steps' durations say the change lies) give each step's typical duration and
//    spread (its own variation, once each past run's overall pace is taken out, pooled across
//    steps); a step history only ever took from the cache says nothing of its real length. What
//    is left is scaled by this run's speed against history, held as a belief: a
//    precision-weighted mean of ln(actual / typical) over the finished, uncached steps (a cached
//    step takes ~0 s whatever it took before), shrunk toward 1 so a few noisy seconds cannot
//    swing it, and pushed slower once the current step outlasts what that speed predicts. The
//    current step's time left is the lognormal expectation given how long it has run, so a step
//    longer than all of history still has time left. While every step so far came from the
//    build cache, the cache may go on answering: where it stops is weighed from past rebuilds
//    and from how long this run's cache hits took. Of all the courses (where the cache stops,
//    the speed), the estimate is the time left with the least expected error relative to the
//    time really left (errors about less than a minute count in seconds): the median of the
//    courses' times left, each weighted by its probability over its time left. With nothing yet
//    known of the speed, that is history's typical time x e^(-0.3^2), about 9 % under it (a
//    guess k times too low is wrong by less, relative to the time really left, than one k times
//    too high). The range is the 10th-90th percentile over all courses.
//    As ninja does, once some work is done (15 s and 5 % of the expected work) the run must stay
//    within a sane factor (5x) of history, or history is dropped.
//  - tasks (`task_progress`, e.g. a benchmark under "benchmark_per_task"): history's mean task
//    time counts as a few finished tasks beside the ones this run has finished ("blend").
//  - no per-step history: the operation's average blended with the run's own pace ("blend"), or
//    the run's own pace alone ("progress"); `progress(fraction)` feeds operations without steps.
//  - nothing that supports an estimate: std::nullopt and "none". The estimate is never negative.
// The range (10th-90th percentile) comes from the spread of past runs and what is not yet known
// of this run. bench/eta_accuracy.cpp measures all of this against replayed runs.
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
    double error_floor_seconds = 60;      // errors about less time left than this count in seconds
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

// Variance of the time left of the same step: Var(X | X > e). The far tail is close to
// exponential, whose sd equals its mean.
inline double lognormal_time_left_variance(double median, double sigma, double elapsed) {
    if (median <= 0) return 0.0;
    const double mu = std::log(median);
    const double z = elapsed > 0 ? (std::log(elapsed) - mu) / sigma : -std::numeric_limits<double>::infinity();
    if (z > 8) return std::pow(lognormal_time_left(median, sigma, elapsed), 2);
    const auto upper_tail = [](double x) { return 0.5 * std::erfc(x / std::sqrt(2.0)); };
    const double survive = elapsed > 0 ? upper_tail(z) : 1.0;
    const double first = median * std::exp(sigma * sigma / 2) * (elapsed > 0 ? upper_tail(z - sigma) : 1.0) / survive;
    const double second =
        median * median * std::exp(2 * sigma * sigma) * (elapsed > 0 ? upper_tail(z - 2 * sigma) : 1.0) / survive;
    return std::max(0.0, second - first * first);
}

// log P(X > e) for a lognormal X with this log-median and log-spread.
inline double log_survival(double log_median, double sigma, double elapsed) {
    if (elapsed <= 0) return 0.0;
    const double z = (std::log(elapsed) - log_median) / sigma;
    if (z < 30) return std::log(std::max(0.5 * std::erfc(z / std::sqrt(2.0)), 1e-300));
    return -z * z / 2 - std::log(z * std::sqrt(2 * 3.141592653589793));  // Mills' ratio, past erfc's range
}

// One possible speed of the run (ln of its seconds per typical second) and its probability.
struct SpeedPoint {
    double log_scale = 0;
    double weight = 0;
};

// Where this run's speed may lie: a normal belief (from the finished steps) and, when the current
// step has run `elapsed` seconds of a lognormal duration (log-median `log_typical` + speed,
// log-spread `sigma`), the knowledge that it has not finished yet, so a step much longer than
// history makes the run slower the longer it runs. Speeds beyond `max_factor` either way are not
// considered: such a run is not comparable with history. Returned as points whose weights sum to 1.
inline std::vector<SpeedPoint> speed_belief(double mean, double variance, std::optional<double> log_typical,
                                            double sigma, double elapsed, double max_factor) {
    const double sd = std::sqrt(variance);
    const double bound = std::log(std::max(max_factor, 1.0));
    // While the step is within what the finished steps predict for it, "not finished yet" would
    // only trim the fast tail of the belief, and that trim would rest on the far tail of a spread
    // that a few past runs measured: it counts only once the step has outrun that prediction.
    const bool censored = log_typical && sigma > 0 && elapsed > std::exp(*log_typical + mean);
    double lo = std::max(mean - 4 * sd, -bound);
    double hi = std::min(mean + 4 * sd, bound);
    if (censored) hi = std::min(std::max(hi, std::log(elapsed) - *log_typical + 3 * sigma), bound);
    if (hi <= lo) return {{std::clamp(mean, -bound, bound), 1.0}};
    const int points = 41;
    std::vector<SpeedPoint> belief;
    double top = -std::numeric_limits<double>::infinity();
    for (int i = 0; i < points; ++i) {
        const double u = lo + (hi - lo) * i / (points - 1);
        double log_weight = -0.5 * (u - mean) * (u - mean) / variance;
        if (censored) log_weight += log_survival(*log_typical + u, sigma, elapsed);
        belief.push_back({u, log_weight});
        top = std::max(top, log_weight);
    }
    double sum = 0;
    for (auto& b : belief) sum += (b.weight = std::exp(b.weight - top));
    for (auto& b : belief) b.weight /= sum;
    return belief;
}

// The `q` quantile of a mixture of lognormals (log-mean `mu`, log-sd `sigma`, weight), by bisection
// on the log.
struct LognormalPart {
    double mu = 0;
    double sigma = 0;
    double weight = 0;
};

inline double mixture_quantile(const std::vector<LognormalPart>& parts, double q) {
    double lo = std::numeric_limits<double>::infinity();
    double hi = -lo;
    for (const auto& c : parts) {
        lo = std::min(lo, c.mu - 6 * c.sigma - 1e-9);
        hi = std::max(hi, c.mu + 6 * c.sigma + 1e-9);
    }
    const auto cdf = [&](double x) {
        double f = 0;
        for (const auto& c : parts) {
            f += c.weight * (c.sigma > 0 ? 0.5 * std::erfc((c.mu - x) / (c.sigma * std::sqrt(2.0))) : x >= c.mu ? 1.0 : 0.0);
        }
        return f;
    };
    for (int i = 0; i < 40; ++i) {
        const double mid = (lo + hi) / 2;
        (cdf(mid) < q ? lo : hi) = mid;
    }
    return std::exp((lo + hi) / 2);
}

// The value that splits the weight in half, interpolated between neighbours (each value's weight
// is centred on it) so that it moves smoothly as the weights do. `values`: value, weight.
inline double weighted_median(std::vector<std::pair<double, double>> values) {
    if (values.empty()) return 0.0;
    std::sort(values.begin(), values.end());
    double total = 0;
    for (const auto& v : values) total += v.second;
    double below = 0;
    double previous_value = values.front().first;
    double previous_mid = 0;
    for (const auto& [value, weight] : values) {
        const double mid = (below + weight / 2) / total;
        if (mid >= 0.5) {
            if (mid <= previous_mid || below == 0) return value;
            return previous_value + (value - previous_value) * (0.5 - previous_mid) / (mid - previous_mid);
        }
        below += weight;
        previous_value = value;
        previous_mid = mid;
    }
    return values.back().first;
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

// What past runs say of each step: its typical (median) duration when not cached, whether any
// past run did it uncached, and its spread (sd of the log). Each past run ran at a pace of its
// own (another machine, another hour) that shows in all its steps alike, so durations are first
// divided by their run's pace (the median of its steps' ratios to the plain medians, when at
// least three steps show it) before their spread is taken: what is left is the step's own
// variation. A few runs say little of one step's spread, so each is pulled toward the spread all
// steps show together (or, with too little history for that, toward 0.25) as if two more runs
// had shown it. How unsure each median still is stays apart: all medians come from the same past
// runs, so their errors largely cancel in this run's speed against them, but not in the time the
// steps left will take.
struct StepProfile {
    std::vector<double> typical;
    std::vector<bool> known;
    std::vector<double> spread;
    std::vector<double> typical_spread;  // how unsure the typical duration itself is (sd of its log)
};

inline StepProfile step_profile(const std::vector<const PastRun*>& runs, std::size_t steps) {
    const auto uncached = [&](std::size_t r, std::size_t j) {
        return !runs[r]->cached(static_cast<int>(j) + 1) && runs[r]->step_seconds[j] > 0;
    };
    std::vector<double> plain(steps, 0.0);
    for (std::size_t j = 0; j < steps; ++j) {
        std::vector<double> seconds;
        for (std::size_t r = 0; r < runs.size(); ++r) {
            if (uncached(r, j)) seconds.push_back(runs[r]->step_seconds[j]);
        }
        if (!seconds.empty()) plain[j] = median_of(seconds);
    }
    std::vector<double> log_pace(runs.size(), 0.0);
    std::vector<bool> paced(runs.size(), false);
    double pace_sum = 0;
    int paced_runs = 0;
    for (std::size_t r = 0; r < runs.size(); ++r) {
        std::vector<double> ratios;
        for (std::size_t j = 0; j < steps; ++j) {
            if (uncached(r, j) && plain[j] > 0) ratios.push_back(std::log(runs[r]->step_seconds[j] / plain[j]));
        }
        if (ratios.size() < 3) continue;
        log_pace[r] = median_of(ratios);
        paced[r] = true;
        pace_sum += log_pace[r];
        ++paced_runs;
    }
    for (std::size_t r = 0; r < runs.size(); ++r) {
        if (paced[r]) log_pace[r] -= pace_sum / paced_runs;  // paces relative to history's average
    }

    StepProfile out;
    std::vector<std::vector<double>> normalised(steps);
    double squares = 0;
    double dof = 0;
    for (std::size_t j = 0; j < steps; ++j) {
        std::vector<double> all;
        for (std::size_t r = 0; r < runs.size(); ++r) {
            all.push_back(runs[r]->step_seconds[j]);
            if (uncached(r, j)) normalised[j].push_back(runs[r]->step_seconds[j] / std::exp(log_pace[r]));
        }
        // A step that history only ever took from the cache has no known uncached duration:
        // its cached time stands in, and it says nothing about this run's speed.
        out.typical.push_back(plain[j] > 0 ? plain[j] : median_of(all));
        out.known.push_back(!normalised[j].empty());
        if (normalised[j].size() >= 2) {
            double mean = 0;
            for (double x : normalised[j]) mean += std::log(x);
            mean /= static_cast<double>(normalised[j].size());
            for (double x : normalised[j]) squares += std::pow(std::log(x) - mean, 2);
            dof += static_cast<double>(normalised[j].size() - 1);
        }
    }
    const double usual = 0.25;
    const double pseudo_runs = 2;
    const double pooled = std::sqrt((squares + pseudo_runs * usual * usual) / (dof + pseudo_runs));
    for (std::size_t j = 0; j < steps; ++j) {
        const auto n = static_cast<double>(normalised[j].size());
        out.spread.push_back(std::clamp(log_spread(normalised[j], pooled), 0.05, 1.0));
        // A median of n samples varies by about sqrt(pi / 2n) of their spread.
        out.typical_spread.push_back(n > 0 ? out.spread.back() * std::sqrt(3.141592653589793 / (2 * n)) : 0.0);
    }
    return out;
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

    // This run's steps for History::record, once every step has finished; nullopt before. The
    // time outside the steps belongs to the operation too (a build reads its definition and pulls
    // metadata before step 1, waits between steps, exports the image after the last): each gap
    // goes to the step before it, the wait before step 1 to step 1, and the time from the last
    // step's end until `ended` to the last step, so the steps add up to the whole run. With
    // `ended`, a last step that started and was never said to finish ends then.
    std::optional<PastRun> finished_run(std::optional<double> ended = std::nullopt) const {
        if (total_ <= 0 || static_cast<int>(steps_.size()) < total_) return std::nullopt;
        const bool has_end = ended.has_value() && std::isfinite(ended.value_or(0.0));
        const double end_time = has_end ? ended.value_or(0.0) : 0.0;
        const auto n = static_cast<std::size_t>(total_);
        std::vector<StepObs> steps(steps_.begin(), steps_.begin() + static_cast<std::ptrdiff_t>(n));
        if (has_end && steps.back().start && !steps.back().end) steps.back().end = std::max(end_time, *steps.back().start);
        PastRun run;
        for (std::size_t i = 0; i < n; ++i) {
            if (!steps[i].start || !steps[i].end) return std::nullopt;
            run.step_seconds.push_back(*steps[i].end - *steps[i].start);
            if (steps[i].cached) run.cached_steps.push_back(static_cast<int>(i) + 1);
        }
        const auto gap = [](double from, double to) { return std::max(0.0, to - from); };
        run.step_seconds.front() += gap(t0_.value_or(*steps.front().start), *steps.front().start);
        for (std::size_t i = 0; i + 1 < n; ++i) run.step_seconds[i] += gap(*steps[i].end, *steps[i + 1].start);
        double last_end = *steps.front().end;
        for (const StepObs& o : steps) last_end = std::max(last_end, *o.end);
        if (has_end) run.step_seconds.back() += gap(last_end, end_time);
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
        std::vector<double> typical_spread;  // per past step, how unsure `typical` is (sd of its log)
        double typical_total = 0;
        int shift = 0;                // this run's steps minus the past runs'
        int change_at = 0;            // this run's first step (0-based) after the change, or total
        int current = 1;              // this run's first step not done (total + 1 when all are)
        int past_current = 0;         // the past step it matches; out of range when none does
        double current_elapsed = 0;
        std::vector<detail::eta::SpeedPoint> speeds;  // belief in this run's seconds per typical second
        double finished_scale = 1;    // its best guess from finished steps only (the stall threshold's)
        double spread_inflation = 1;  // how much more this run's steps vary than history's
        int cache_streak = 0;         // this run's cache hits so far, while every finished step was one
        double hit_log_median = 0;    // how long those hits took: log-median and log-spread
        double hit_log_spread = 1;
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
        // The first past step matching this run's step `i` (0-based) or a later one; past the
        // last past step when none does.
        int first_past_from(int i, int total) const noexcept {
            for (; i < total; ++i) {
                const int j = past_step(i, change_at);
                if (j >= 0) return j;
            }
            return static_cast<int>(typical.size());
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
    // and the current one is tried (steps before it match the past steps of the same number, steps
    // after it are shifted by the difference, inserted steps match nothing and cost one e-fold
    // each), and so is "not reached yet"; the place whose matches fit the durations best wins.
    // The current step has not finished: calling it the new one costs nothing until matching it
    // costs more than an insertion would, that is, once it has outrun its match by one e-fold.
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
            const int j = finished < total_ ? p.past_step(finished, change_at) : -1;
            if (j >= 0 && p.has(j) && p.known[static_cast<std::size_t>(j)] && p.current_elapsed > 0) {
                const double typical = p.typical[static_cast<std::size_t>(j)];
                sum += std::max(0.0, std::log(p.current_elapsed / typical) - 1.0);
            }
            return sum;
        };
        int best = total_;
        double best_misfit = misfit(total_);
        for (int change_at = 0; change_at <= finished && change_at < total_; ++change_at) {
            const double m = misfit(change_at);
            if (m < best_misfit) {
                best = change_at;
                best_misfit = m;
            }
        }
        return best;
    }

    // Docker's cache answers a prefix of the build: the steps before the first that changed. While
    // every finished step of this run came from the cache, the streak's length, and how long those
    // hits took (at least 10 ms each, the resolution of a log line's arrival); nothing otherwise.
    std::pair<int, std::vector<double>> cache_hits() const {
        const int finished = first_open_step() - 1;
        std::vector<double> hits;
        for (int i = 0; i < finished && i < static_cast<int>(steps_.size()); ++i) {
            const auto& s = steps_[static_cast<std::size_t>(i)];
            if (!s.cached) return {0, {}};
            hits.push_back(s.start && s.end ? std::max(*s.end - *s.start, 0.01) : 0.01);
        }
        if (static_cast<int>(hits.size()) < finished) return {0, {}};
        return {finished, hits};
    }

    std::optional<StepPlan> step_plan(double now) const {
        if (total_ <= 0) return std::nullopt;
        StepPlan p;
        p.runs = comparable_runs();
        if (p.runs.empty()) return std::nullopt;
        const std::size_t past_steps = p.runs.front()->step_seconds.size();
        detail::eta::StepProfile profile = detail::eta::step_profile(p.runs, past_steps);
        p.typical = std::move(profile.typical);
        p.known = std::move(profile.known);
        p.spread = std::move(profile.spread);
        p.typical_spread = std::move(profile.typical_spread);
        for (double typical : p.typical) p.typical_total += typical;
        if (p.typical_total <= 0) return std::nullopt;
        p.current = first_open_step();
        if (p.current <= total_) p.current_elapsed = std::max(0.0, now - current_start(p.current));
        p.shift = total_ - static_cast<int>(past_steps);
        p.change_at = change_position(p);
        p.past_current = p.current <= total_ ? p.past_step(p.current - 1, p.change_at) : static_cast<int>(past_steps);

        // This run's speed against history, in logs: every finished, uncached step is one
        // measurement, weighted by how steady that step is across past runs; the prior (speed 1,
        // spread `speed_spread`) keeps a few noisy seconds from swinging it.
        double weighted = 0;
        double weights = 0;
        double actual = 0;
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
        // Steps of this run that stray from one common speed more than history's spreads allow
        // (say, its network is slow but its CPU fast) say less about the steps left: each counts as
        // that much less precise (overdispersion), and the steps left vary that much more.
        double squares = 0;
        const double unshrunk = weights > 0 ? weighted / weights : 0.0;
        for (const auto& [y, spread] : measured) squares += std::pow((y - unshrunk) / spread, 2);
        p.spread_inflation = std::max(1.0, (squares + 2.0) / (static_cast<double>(measured.size()) + 1.0));
        const double finished_mean = weighted / p.spread_inflation / (weights / p.spread_inflation + prior);
        const double finished_variance = 1.0 / (weights / p.spread_inflation + prior);
        p.finished_scale = std::exp(finished_mean);
        // The current step, still running, is evidence too: the run is at least slow enough for it
        // not to have finished yet.
        std::optional<double> log_current_typical;
        double current_spread = 0;
        if (p.has(p.past_current)) {
            const auto k = static_cast<std::size_t>(p.past_current);
            if (p.known[k] && p.typical[k] > 0) {
                log_current_typical = std::log(p.typical[k]);
                current_spread = p.spread[k];
            }
        }
        p.speeds = detail::eta::speed_belief(finished_mean, finished_variance, log_current_typical,
                                             current_spread, p.current_elapsed, options_.max_history_factor);
        const auto [streak, hits] = cache_hits();
        p.cache_streak = streak;
        if (!hits.empty()) {
            double log_sum = 0;
            for (double h : hits) log_sum += std::log(h);
            p.hit_log_median = log_sum / static_cast<double>(hits.size());
            p.hit_log_spread = detail::eta::log_spread(hits, 1.0);
        }
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
        // Every way the run may go on (where the cache stops answering; its speed) is a course
        // with a probability. Along each, the current step's expected time left given how long it
        // has run, plus the steps after it (and the cache hits before its uncached work); around
        // it, the spread past runs show for those steps (widened when this run's steps disagree
        // more than that). Which course the run is on is what is unknown, so the estimate is the
        // one whose expected error relative to the time really left is least: the median of the
        // courses' times left, each weighted by its probability over its time left (an ETA of 10
        // minutes when 1 is left is ten times wrong, one of 1 minute when 10 are left only 0.9).
        // Below `error_floor_seconds` an error counts in seconds: a slim chance that only a few
        // cache hits are left must not pull the ETA of a long build down to nothing. The range is
        // the 10th to 90th percentile of all courses together.
        const auto stops = cache_stops(*p);
        const double hit_seconds = p->cache_streak > 0 ? std::exp(p->hit_log_median) : 0.0;
        std::vector<std::pair<double, double>> means;  // a course's seconds left, its probability / them
        std::vector<detail::eta::LognormalPart> parts;
        for (const auto& [first_uncached, stop_weight] : stops) {
            const bool timed_current = first_uncached == p->current - 1 && p->has(jc);
            const int from = timed_current ? jc + 1 : p->first_past_from(first_uncached, total_);
            const double hits_left = hit_seconds * (first_uncached - (p->current - 1));
            double typical_left = 0;
            double step_variance = 0;
            for (int j = from; j < static_cast<int>(p->typical.size()); ++j) {
                const auto k = static_cast<std::size_t>(j);
                typical_left += p->typical[k];
                step_variance += std::pow(p->typical[k] * p->spread[k], 2) * p->spread_inflation +
                                 std::pow(p->typical[k] * p->typical_spread[k], 2);
            }
            for (const auto& speed : p->speeds) {
                const double scale = std::exp(speed.log_scale);
                double mean = hits_left + scale * typical_left;
                double variance = scale * scale * step_variance;
                if (timed_current) {
                    const auto k = static_cast<std::size_t>(jc);
                    const double median = scale * p->typical[k];
                    mean += detail::eta::lognormal_time_left(median, p->spread[k], p->current_elapsed);
                    variance += p->spread_inflation *
                                detail::eta::lognormal_time_left_variance(median, p->spread[k], p->current_elapsed);
                }
                if (mean > 0 && stop_weight * speed.weight > 0) {
                    means.emplace_back(mean, stop_weight * speed.weight / std::max(mean, options_.error_floor_seconds));
                    const double sigma2 = std::log1p(variance / (mean * mean));
                    parts.push_back({std::log(mean) - sigma2 / 2, std::sqrt(sigma2), stop_weight * speed.weight});
                }
            }
        }
        if (parts.empty()) {
            e.seconds = 0.0;
            return e;
        }
        e.seconds = detail::eta::weighted_median(std::move(means));
        e.range = EtaRange{std::min(*e.seconds, detail::eta::mixture_quantile(parts, 0.1)),
                           std::max(*e.seconds, detail::eta::mixture_quantile(parts, 0.9))};
        return e;
    }

    // Where this run's uncached work resumes (its 0-based step; total when nothing is left but
    // cache hits) and how likely each place is. Outside a cache streak, at the current step. In
    // one, the cache answers up to the first step that changed, which is where past runs that
    // came as far from the cache stopped (a rebuild after an edit usually changes the same COPY),
    // or, as if one more run had stopped at each with equal chance, anywhere after the streak.
    // The current step is a hit only if hits here last as long as it has run so far.
    std::vector<std::pair<int, double>> cache_stops(const StepPlan& p) const {
        const int current = p.current - 1;
        if (p.cache_streak == 0 || current >= total_) return {{current, 1.0}};
        std::vector<double> prior(static_cast<std::size_t>(total_ - current + 1), 1.0 / (total_ - current + 1));
        for (const PastRun* run : p.runs) {
            int past_stop = 0;
            while (past_stop < static_cast<int>(run->step_seconds.size()) && run->cached(past_stop + 1)) ++past_stop;
            const int stop = past_stop < p.change_at ? past_stop : std::min(past_stop + p.shift, total_);
            if (stop >= current) prior[static_cast<std::size_t>(stop - current)] += 1;
        }
        const double hit_lasts = std::exp(detail::eta::log_survival(p.hit_log_median, p.hit_log_spread, p.current_elapsed));
        double work_lasts = 1;
        if (p.has(p.past_current)) {
            const auto k = static_cast<std::size_t>(p.past_current);
            work_lasts = 0;
            for (const auto& speed : p.speeds) {
                work_lasts += speed.weight * std::exp(detail::eta::log_survival(std::log(p.typical[k]) + speed.log_scale,
                                                                               p.spread[k], p.current_elapsed));
            }
        }
        std::vector<std::pair<int, double>> stops;
        double sum = 0;
        for (std::size_t m = 0; m < prior.size(); ++m) {
            const double w = prior[m] * (m == 0 ? work_lasts : hit_lasts);
            stops.emplace_back(current + static_cast<int>(m), w);
            sum += w;
        }
        if (sum <= 0) return {{current, 1.0}};
        for (auto& stop : stops) stop.second /= sum;
        return stops;
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
