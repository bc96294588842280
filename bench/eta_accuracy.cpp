// How right is the ETA? Replays generated timelines of image builds and benchmarks against history
// from earlier runs and prints the mean absolute percentage error (MAPE) of the remaining time,
// measured at 25 %, 30 %, ..., 90 % of each run's real duration, for:
//   azops     azops::EtaEstimator
//   original  the original specification's (total - current) * avg_step_time, with
//             avg_step_time = history avg_seconds / total steps (per task for benchmarks) and
//             current = steps (tasks) finished, the kinder of its two readings
//   tqdm      a tqdm-style rate: exponential moving average (smoothing 0.3, tqdm's bias correction)
//             of the finished steps' (tasks') durations, times the steps (tasks) left
// A point where an estimator gives no estimate counts as a 100 % error.
//
// Two profiles of timelines, each from the same fixed seed (every run prints the same figures).
// Both share the Dockerfile's shape and the benchmarks:
//  - image builds of 10-14 steps: the base-image FROM (network, 20-90 s), one or two long steps
//    (300-900 s, network pulls or CPU-bound installs), one to three medium steps (30-150 s), the
//    rest small COPY/ENV/RUN steps (0.2-6 s); a step from the build cache takes 0.05-0.5 s.
//    History holds 3-8 earlier runs, a quarter of them rebuilds whose first 1..T-2 steps came
//    from the cache. Families: "fresh" builds (60 %), "rebuild" (30 %, a cached prefix of 1..T-3
//    steps), "changed" (10 %, the Dockerfile gained a small or a 30-150 s CPU step since history
//    was recorded).
//  - benchmarks of 20-150 tasks: history holds 30-300 earlier tasks of mean 120-400 s, each from
//    a machine 0.9-1.1x as fast and +-40 % (uniform) around it; the replayed run is on a machine
//    0.6-1.6x as fast, each task +-40 % (uniform) around the machine-scaled mean.
//  - 400 builds and 150 benchmarks by default.
// spec: the accuracy target's own description, taken literally. One machine speed per run,
//    0.6-1.6x (uniform), applies to every step of the run; the history runs come from machines
//    0.9-1.1x. Every uncached step then varies by lognormal noise of sigma 0.08. Why 8 %: the
//    same Dockerfile built again without cache on the same machine repeats its CPU-bound steps
//    within a few percent, while its downloads vary with the mirror and the hour more than that;
//    8 % (about 90 % of the steps within +-13 % of their machine-scaled time) stands for both as
//    one figure of run-to-run repeatability. These parameters were fixed before azops was scored
//    on them and are not to be tuned to any estimator.
// harsh: beyond the description. The machine is 0.6-1.6x as fast for CPU and disk work and,
//    independently, its network 0.7-1.4x as slow (history: 0.9-1.1x and 0.8-1.25x); per-step
//    noise is lognormal 10 % for CPU, 20 % for network and 25 % for small steps. One speed cannot
//    describe such a run, so even the oracle misses the target there: it shows how azops degrades,
//    not whether it meets the target.
//
// Usage: eta_accuracy [--profile spec|harsh|both] [--check] [builds] [benchmarks]
// Each profile prints one table and a PASS/FAIL line against the target: overall MAPE <= 15 % and
// at most half of the better of the other two. --check exits 1 when the spec profile fails it (for
// CTest), 0 otherwise. An "oracle" column (told each run's true speeds) shows the error no
// estimator can avoid.
#include <azops/eta.hpp>
#include <azops/history.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace {

constexpr std::uint64_t seed = 20261129;

// Own distributions on top of mt19937_64, so the figures are the same with every standard library.
class Rng {
public:
    explicit Rng(std::uint64_t seed) : engine_(seed) {}
    double uniform(double lo, double hi) { return lo + (hi - lo) * unit(); }
    int integer(int lo, int hi) { return lo + static_cast<int>(unit() * (hi - lo + 1)); }
    bool chance(double p) { return unit() < p; }
    double lognormal(double sigma) {
        const double u1 = std::max(unit(), 1e-300), u2 = unit();
        return std::exp(sigma * std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
    }

private:
    double unit() { return static_cast<double>(engine_() >> 11) * (1.0 / 9007199254740992.0); }
    std::mt19937_64 engine_;
};

enum class Kind { cpu, network, small };

struct StepSpec {
    double base;
    Kind kind;
};

struct Run {
    std::vector<double> seconds;
    std::vector<bool> cached;
    std::vector<double> expected;  // each step's (task's) duration without its own noise
    double total() const {
        double t = 0;
        for (double s : seconds) t += s;
        return t;
    }
};

std::vector<StepSpec> make_dockerfile(Rng& rng) {
    const int steps = rng.integer(10, 14);
    std::vector<StepSpec> spec(static_cast<std::size_t>(steps));
    spec[0] = {rng.uniform(20, 90), Kind::network};
    std::vector<int> free;
    for (int i = 1; i < steps; ++i) free.push_back(i);
    const auto take = [&] {
        const int at = rng.integer(0, static_cast<int>(free.size()) - 1);
        const int step = free[static_cast<std::size_t>(at)];
        free.erase(free.begin() + at);
        return static_cast<std::size_t>(step);
    };
    // One draw per statement: the order in which a compiler evaluates arguments must not change the figures.
    const auto add = [&](double lo, double hi) {
        const std::size_t step = take();
        const double base = rng.uniform(lo, hi);
        spec[step] = {base, rng.chance(0.5) ? Kind::network : Kind::cpu};
    };
    const int long_steps = rng.integer(1, 2);
    for (int i = 0; i < long_steps; ++i) add(300, 900);
    const int medium_steps = rng.integer(1, 3);
    for (int i = 0; i < medium_steps; ++i) add(30, 150);
    for (int step : free) spec[static_cast<std::size_t>(step)] = {rng.uniform(0.2, 6), Kind::small};
    return spec;
}

enum class Profile { spec, harsh };

// spec profile: `speed` scales every uncached step alike.
Run spec_build_run(const std::vector<StepSpec>& spec, Rng& rng, double speed, int cached_prefix) {
    Run run;
    for (std::size_t i = 0; i < spec.size(); ++i) {
        const bool cached = static_cast<int>(i) < cached_prefix;
        double s = 0, expected = 0;
        if (cached) {
            expected = 0.275;
            s = rng.uniform(0.05, 0.5);
        } else {
            expected = spec[i].base / speed;
            s = expected * rng.lognormal(0.08);
        }
        run.seconds.push_back(s);
        run.cached.push_back(cached);
        run.expected.push_back(expected);
    }
    return run;
}

// harsh profile: `speed` is the CPU and disk speed relative to the reference; `network` the
// network's slowness.
Run build_run(const std::vector<StepSpec>& spec, Rng& rng, double speed, double network, int cached_prefix) {
    Run run;
    for (std::size_t i = 0; i < spec.size(); ++i) {
        const bool cached = static_cast<int>(i) < cached_prefix;
        double s = 0, expected = 0;
        if (cached) {
            expected = 0.275;
            s = rng.uniform(0.05, 0.5);
        } else if (spec[i].kind == Kind::cpu) {
            expected = spec[i].base / speed;
            s = expected * rng.lognormal(0.10);
        } else if (spec[i].kind == Kind::network) {
            expected = spec[i].base * network;
            s = expected * rng.lognormal(0.20);
        } else {
            expected = spec[i].base / speed;
            s = expected * rng.lognormal(0.25);
        }
        run.seconds.push_back(s);
        run.cached.push_back(cached);
        run.expected.push_back(expected);
    }
    return run;
}

struct Scenario {
    std::string family;
    azops::History history;
    std::string op;
    Run run;          // builds: the steps; benchmarks: the tasks
    bool tasks = false;
};

Scenario build_scenario(Rng& rng, const std::string& family, Profile profile) {
    Scenario sc;
    sc.family = family;
    sc.op = "docker_build";
    auto spec = make_dockerfile(rng);
    const int steps = static_cast<int>(spec.size());
    const int past_runs = rng.integer(3, 8);
    for (int r = 0; r < past_runs; ++r) {
        const int prefix = rng.chance(0.25) ? rng.integer(1, steps - 2) : 0;
        const double speed = rng.uniform(0.9, 1.1);
        Run past;
        if (profile == Profile::spec) {
            past = spec_build_run(spec, rng, speed, prefix);
        } else {
            const double network = rng.uniform(0.8, 1.25);
            past = build_run(spec, rng, speed, network, prefix);
        }
        std::vector<int> cached;
        for (int i = 0; i < steps; ++i) {
            if (past.cached[static_cast<std::size_t>(i)]) cached.push_back(i + 1);
        }
        sc.history.record(sc.op, past.seconds, cached);
    }
    if (family == "changed") {
        const auto at = static_cast<std::size_t>(rng.integer(1, steps - 1));
        const StepSpec added = rng.chance(0.5) ? StepSpec{rng.uniform(0.2, 6), Kind::small}
                                               : StepSpec{rng.uniform(30, 150), Kind::cpu};
        spec.insert(spec.begin() + static_cast<std::ptrdiff_t>(at), added);
    }
    const int prefix = family == "rebuild" ? rng.integer(1, steps - 3) : 0;
    const double speed = rng.uniform(0.6, 1.6);
    if (profile == Profile::spec) {
        sc.run = spec_build_run(spec, rng, speed, prefix);
    } else {
        const double network = rng.uniform(0.7, 1.4);
        sc.run = build_run(spec, rng, speed, network, prefix);
    }
    return sc;
}

Scenario benchmark_scenario(Rng& rng) {
    Scenario sc;
    sc.family = "benchmark";
    sc.op = std::string(azops::benchmark_task_key);
    sc.tasks = true;
    const double mean = rng.uniform(120, 400);
    const int past = rng.integer(30, 300);
    for (int i = 0; i < past; ++i) {
        const double machine = rng.uniform(0.9, 1.1);
        sc.history.record_task(sc.op, mean / machine * rng.uniform(0.6, 1.4));
    }
    const int n = rng.integer(20, 150);
    const double speed = rng.uniform(0.6, 1.6);
    for (int i = 0; i < n; ++i) {
        sc.run.seconds.push_back(mean / speed * rng.uniform(0.6, 1.4));
        sc.run.cached.push_back(false);
        sc.run.expected.push_back(mean / speed);
    }
    return sc;
}

// Where the run stands at `t`: units (steps or tasks) finished, and their durations in order.
struct Position {
    int finished = 0;
    std::vector<double> finished_seconds;
};

Position position_at(const Run& run, double t) {
    Position p;
    double at = 0;
    for (double s : run.seconds) {
        if (at + s > t) break;
        at += s;
        ++p.finished;
        p.finished_seconds.push_back(s);
    }
    return p;
}

// An estimator that has been told everything that happened up to `t`.
azops::EtaEstimator azops_at(const Scenario& sc, double t) {
    azops::EtaEstimator eta(&sc.history, sc.op);
    eta.start(0);
    const int total = static_cast<int>(sc.run.seconds.size());
    if (sc.tasks) eta.task_progress(0, total, 0);
    double at = 0;
    for (int i = 0; i < total; ++i) {
        const double s = sc.run.seconds[static_cast<std::size_t>(i)];
        if (sc.tasks) {
            if (at + s > t) break;
            at += s;
            eta.task_progress(i + 1, total, at);
            continue;
        }
        eta.step_started(i + 1, total, at);
        if (at + s > t) break;
        at += s;
        eta.step_finished(i + 1, at, sc.run.cached[static_cast<std::size_t>(i)]);
    }
    return eta;
}

std::optional<double> original_eta(const Scenario& sc, double t) {
    const auto past = sc.history.operation(sc.op);
    if (!past || !past->avg_seconds) return std::nullopt;
    const int total = static_cast<int>(sc.run.seconds.size());
    const double per_unit = sc.tasks ? *past->avg_seconds : *past->avg_seconds / total;
    return (total - position_at(sc.run, t).finished) * per_unit;
}

std::optional<double> tqdm_eta(const Scenario& sc, double t) {
    const Position p = position_at(sc.run, t);
    if (p.finished == 0) return std::nullopt;
    const double alpha = 0.3;
    double ema = 0;
    int calls = 0;
    for (double s : p.finished_seconds) {
        ema = alpha * s + (1 - alpha) * ema;
        ++calls;
    }
    const double per_unit = ema / (1 - std::pow(1 - alpha, calls));
    return (static_cast<int>(sc.run.seconds.size()) - p.finished) * per_unit;
}

// Not an estimator: it is told the run's true machine and network speed (not each step's luck),
// which shows how much of the error no estimator can avoid.
double oracle_eta(const Scenario& sc, double t) {
    double at = 0, left = 0;
    bool current_seen = false;
    for (std::size_t i = 0; i < sc.run.seconds.size(); ++i) {
        if (!current_seen && at + sc.run.seconds[i] <= t) {
            at += sc.run.seconds[i];
            continue;
        }
        left += current_seen ? sc.run.expected[i] : std::max(0.0, sc.run.expected[i] - (t - at));
        current_seen = true;
    }
    return left;
}

// Mean absolute error of the remaining time, in % of the remaining time (MAPE, the figure the
// target is about) and in % of the run's whole duration (a gentler view that does not grow
// near the end of a run).
struct Score {
    double sum = 0, sum_of_duration = 0;
    long points = 0;
    void add(std::optional<double> eta, double truth, double duration) {
        const double error = eta ? std::abs(*eta - truth) : truth;
        sum += error / truth;
        sum_of_duration += error / duration;
        ++points;
    }
    double mape() const { return points > 0 ? 100.0 * sum / static_cast<double>(points) : 0.0; }
    double of_duration() const { return points > 0 ? 100.0 * sum_of_duration / static_cast<double>(points) : 0.0; }
};

struct Scores {
    Score azops, original, tqdm, oracle;
    long in_range = 0, with_range = 0;
};

void replay(const Scenario& sc, Scores& scores) {
    const double duration = sc.run.total();
    for (int pct = 25; pct <= 90; pct += 5) {
        const double t = duration * pct / 100.0;
        const double truth = duration - t;
        azops::EtaEstimator eta = azops_at(sc, t);
        scores.azops.add(eta.eta_seconds(t), truth, duration);
        scores.original.add(original_eta(sc, t), truth, duration);
        scores.tqdm.add(tqdm_eta(sc, t), truth, duration);
        scores.oracle.add(oracle_eta(sc, t), truth, duration);
        if (const auto range = eta.eta_range(t)) {
            ++scores.with_range;
            if (truth >= range->first && truth <= range->second) ++scores.in_range;
        }
    }
}

struct ProfileResult {
    std::map<std::string, Scores> by_family;
    Scores all;
    std::vector<Scenario> scenarios;
};

ProfileResult run_profile(Profile profile, int builds, int benchmarks) {
    Rng rng(seed);
    ProfileResult r;
    for (int i = 0; i < builds; ++i) {
        const double pick = rng.uniform(0, 1);
        r.scenarios.push_back(build_scenario(rng, pick < 0.6 ? "fresh" : pick < 0.9 ? "rebuild" : "changed", profile));
    }
    for (int i = 0; i < benchmarks; ++i) r.scenarios.push_back(benchmark_scenario(rng));
    for (const auto& sc : r.scenarios) {
        replay(sc, r.by_family[sc.family]);
        replay(sc, r.all);
    }
    return r;
}

// Prints the profile's table; true when azops meets the target on it.
bool report(const char* name, ProfileResult r) {
    std::printf("== profile %s: ETA accuracy at 25%%, 30%%, ..., 90%% of each run (seed %llu)\n\n", name,
                static_cast<unsigned long long>(seed));
    std::printf("MAPE: mean |ETA - real remaining| / real remaining\n");
    std::printf("%-10s %5s %6s %8s %9s %8s | %8s %9s\n", "family", "runs", "points", "azops", "original", "tqdm",
                "oracle*", "in range");
    const auto count_runs = [&](const std::string& family) {
        long runs = 0;
        for (const auto& sc : r.scenarios) runs += family == "overall" || sc.family == family ? 1 : 0;
        return runs;
    };
    const auto scores_of = [&](const std::string& family) -> const Scores& {
        return family == "overall" ? r.all : r.by_family[family];
    };
    const char* families[] = {"fresh", "rebuild", "changed", "benchmark", "overall"};
    for (const char* family : families) {
        const Scores& s = scores_of(family);
        std::printf("%-10s %5ld %6ld %7.1f%% %8.1f%% %7.1f%% | %7.1f%% %8.0f%%\n", family, count_runs(family),
                    s.azops.points, s.azops.mape(), s.original.mape(), s.tqdm.mape(), s.oracle.mape(),
                    s.with_range > 0 ? 100.0 * static_cast<double>(s.in_range) / static_cast<double>(s.with_range) : 0.0);
    }
    std::printf("\nmean |ETA - real remaining| / whole run duration\n");
    for (const char* family : families) {
        const Scores& s = scores_of(family);
        std::printf("%-10s %5s %6s %7.1f%% %8.1f%% %7.1f%% | %7.1f%%\n", family, "", "", s.azops.of_duration(),
                    s.original.of_duration(), s.tqdm.of_duration(), s.oracle.of_duration());
    }
    std::printf("\n* oracle: not an estimator; told each run's true speeds (not each step's luck), it shows the\n"
                "  error that comes from the steps' own variation alone. in range: share of points where the real\n"
                "  remaining time lay inside azops' eta_range (meant as 10th-90th percentile).\n");

    const double best_other = std::min(r.all.original.mape(), r.all.tqdm.mape());
    const double overall = r.all.azops.mape();
    const bool absolute = overall <= 15.0, relative = overall <= best_other / 2;
    std::printf("\n%s: profile %s, azops overall MAPE %.1f%% <= 15%%: %s; <= half of the better other (%.1f%%): %s\n",
                absolute && relative ? "PASS" : "FAIL", name, overall, absolute ? "met" : "MISSED", best_other / 2,
                relative ? "met" : "MISSED");
    std::printf("      (the oracle, told what no estimator can know, gets %.1f%%)\n\n", r.all.oracle.mape());
    return absolute && relative;
}

int usage() {
    std::fprintf(stderr, "usage: eta_accuracy [--profile spec|harsh|both] [--check] [builds] [benchmarks]\n");
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    std::string profile = "both";
    bool check = false;
    std::vector<int> counts;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg == "--profile" && i + 1 < argc) {
            profile = argv[++i];
        } else if (arg == "--check") {
            check = true;
        } else if (!arg.empty() && arg.find_first_not_of("0123456789") == std::string::npos && counts.size() < 2) {
            counts.push_back(std::atoi(arg.c_str()));
        } else {
            return usage();
        }
    }
    if (profile != "spec" && profile != "harsh" && profile != "both") return usage();
    if (check && profile == "harsh") {
        std::fprintf(stderr, "eta_accuracy: --check judges the spec profile; it cannot go with --profile harsh\n");
        return 2;
    }
    const int builds = counts.size() > 0 ? counts[0] : 400;
    const int benchmarks = counts.size() > 1 ? counts[1] : 150;

    bool spec_passed = true;
    if (profile != "harsh") spec_passed = report("spec", run_profile(Profile::spec, builds, benchmarks));
    if (profile != "spec") report("harsh", run_profile(Profile::harsh, builds, benchmarks));
    return check && !spec_passed ? 1 : 0;
}
