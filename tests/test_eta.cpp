#include <azops/eta.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace {

const std::filesystem::path data = std::filesystem::path(AZOPS_TEST_DATA_DIR) / "history";

// with_steps.json: three past 6-step builds whose typical (median, uncached) steps are
// 62.5, 2.5, 620, 5, 305, 13 seconds (1008 in all); average 1000 s.
azops::History past_builds() { return azops::History::load(data / "with_steps.json"); }
constexpr double typical_total = 1008.0;
constexpr double typical_after_step_2 = 620 + 5 + 305 + 13;
// Before any of its steps has finished, nothing is known of this run's speed against history's but
// the prior, ln(speed) ~ N(0, 0.3^2) (EtaOptions::speed_spread). The estimate least wrong relative to
// the time really left is then the median of that belief weighted by 1 / time left: history's
// typical time times e^(-0.3^2).
const double unknown_speed = std::exp(-0.3 * 0.3);

// Runs steps 1..n of a 6-step build, each taking `seconds[i]`, starting at `t`; returns the end.
double run_steps(azops::EtaEstimator& eta, const std::vector<double>& seconds, double t = 0,
                 const std::vector<bool>& cached = {}) {
    for (std::size_t i = 0; i < seconds.size(); ++i) {
        const int step = static_cast<int>(i) + 1;
        eta.step_started(step, 6, t);
        t += seconds[i];
        eta.step_finished(step, t, i < cached.size() && cached[i]);
    }
    return t;
}

}  // namespace

TEST_CASE("nothing known: no estimate, source none") {
    azops::EtaEstimator eta(nullptr, "docker_build");
    CHECK_FALSE(eta.eta_seconds(10).has_value());
    CHECK(eta.source() == "none");
    eta.start(0);
    eta.step_started(1, 6, 0);
    CHECK_FALSE(eta.eta_seconds(30).has_value());
    CHECK(eta.source() == "none");
    CHECK_FALSE(eta.eta_range(30).has_value());
}

TEST_CASE("per-step history at the start: the typical build") {
    const auto history = past_builds();
    azops::EtaEstimator eta(&history, "docker_build");
    eta.start(0);
    eta.step_started(1, 6, 0);
    const auto left = eta.eta_seconds(0);
    REQUIRE(left);
    CHECK(eta.source() == "history");
    // The current step counts at its lognormal mean, a little above its median.
    CHECK(*left == doctest::Approx(typical_total * unknown_speed).epsilon(0.01));
    CHECK(*left > typical_total * unknown_speed);
    // Ten seconds into step 1, ten seconds less.
    CHECK(*eta.eta_seconds(10) == doctest::Approx(*left - 10).epsilon(0.002));
}

TEST_CASE("a slower machine: history is scaled by this run's speed, more so as evidence grows") {
    const auto history = past_builds();
    azops::EtaEstimator eta(&history, "docker_build");
    eta.start(0);
    const double t = run_steps(eta, {125, 5});  // steps 1 and 2 at twice their typical time
    eta.step_started(3, 6, t);
    const double after_two = *eta.eta_seconds(t);
    CHECK(eta.source() == "history");
    CHECK(after_two > 1.5 * typical_after_step_2);
    CHECK(after_two < 2.0 * typical_after_step_2 * 1.05);

    // Step 3 too takes twice its time: the estimate for steps 4..6 comes close to twice theirs.
    eta.step_finished(3, t + 1240);
    const double after_three = *eta.eta_seconds(t + 1240);
    const double rest = 5 + 305 + 13;
    CHECK(after_three / rest > 1.75);  // shrunk a little toward history, by design
    CHECK(after_three / rest < 2.05);
}

TEST_CASE("a faster machine is scaled down the same way") {
    const auto history = past_builds();
    azops::EtaEstimator eta(&history, "docker_build");
    eta.start(0);
    const double t = run_steps(eta, {31, 1.25, 310});
    eta.step_started(4, 6, t);
    const double left = *eta.eta_seconds(t);
    CHECK(left < 0.6 * (5 + 305 + 13));
    CHECK(left > 0.45 * (5 + 305 + 13));
}

TEST_CASE("cached steps take ~0 s and do not make the run look fast") {
    const auto history = past_builds();
    azops::EtaEstimator eta(&history, "docker_build");
    eta.start(0);
    const double t = run_steps(eta, {0.2, 0.1}, 0, {true, true});
    eta.step_started(3, 6, t);
    // Step 3 has run ten times as long as a hit: it is work, and the rest of the build is to come
    // at a speed the hits say nothing of.
    const double left = *eta.eta_seconds(t + 2);
    CHECK(left == doctest::Approx((typical_after_step_2 - 2) * unknown_speed).epsilon(0.02));

    // The same quick steps reported as not cached would have meant a very fast machine.
    azops::EtaEstimator uncached(&history, "docker_build");
    uncached.start(0);
    uncached.step_started(3, 6, run_steps(uncached, {0.2, 0.1}));
    CHECK(*uncached.eta_seconds(t + 2) < 0.5 * left);
}

TEST_CASE("a step history only saw cached says nothing about this run's speed") {
    azops::History history;
    for (int i = 0; i < 3; ++i) history.record("docker_build", {0.3, 600.0, 20.0}, {1});
    azops::EtaEstimator eta(&history, "docker_build");
    eta.start(0);
    eta.step_started(1, 3, 0);
    eta.step_finished(1, 90);  // 300 times its cached time: not evidence of a slow machine
    eta.step_started(2, 3, 90);
    CHECK(*eta.eta_seconds(90) == doctest::Approx(620 * unknown_speed).epsilon(0.03));
}

TEST_CASE("a run far outside history (10x slower) is not comparable: its own pace is used") {
    const auto history = past_builds();
    azops::EtaEstimator eta(&history, "docker_build");
    eta.start(0);
    const double t = run_steps(eta, {625, 25});
    eta.step_started(3, 6, t);
    const auto left = eta.eta_seconds(t);
    REQUIRE(left);
    CHECK(eta.source() == "progress");
    CHECK(*left == doctest::Approx(325.0 * 4));  // mean step 325 s, four steps left
    CHECK_FALSE(eta.typical_step_seconds(t).has_value());
}

TEST_CASE("no per-step history: the average, then blended with the run's own pace") {
    const auto history = azops::History::load(data / "original_shape.json");  // docker_build: 1200 s
    azops::EtaEstimator eta(&history, "docker_build");
    eta.start(0);
    eta.step_started(1, 12, 0);
    CHECK(*eta.eta_seconds(100) == doctest::Approx(1100));
    CHECK(eta.source() == "history");
    for (int step = 1; step <= 6; ++step) {
        eta.step_started(step, 12, (step - 1) * 50.0);
        eta.step_finished(step, step * 50.0);
    }
    // Half the steps done in 300 s: (1 - 0.5) x (1200 - 300) + 0.5 x (50 s x 6 steps).
    CHECK(*eta.eta_seconds(300) == doctest::Approx(0.5 * 900 + 0.5 * 300));
    CHECK(eta.source() == "blend");

    // Past the average and no step done: nothing supports an estimate.
    azops::EtaEstimator late(&history, "docker_build");
    late.start(0);
    late.step_started(1, 12, 0);
    CHECK_FALSE(late.eta_seconds(1300).has_value());
    CHECK(late.source() == "none");
}

TEST_CASE("a Dockerfile that gained a step still uses per-step history — one much changed does not") {
    const auto history = past_builds();
    azops::EtaEstimator near(&history, "docker_build");
    near.start(0);
    near.step_started(1, 7, 0);
    CHECK(*near.eta_seconds(0) == doctest::Approx(typical_total * unknown_speed).epsilon(0.01));
    CHECK(near.source() == "history");

    // A 40 s step inserted before the long step: the finished steps' durations place the change,
    // so step 4 is matched with the long past step 3.
    azops::EtaEstimator shifted(&history, "docker_build");
    shifted.start(0);
    double t = 0;
    const double seconds[] = {62.0, 2.5, 40.0};
    for (int step = 1; step <= 3; ++step) {
        shifted.step_started(step, 7, t);
        t += seconds[step - 1];
        shifted.step_finished(step, t);
    }
    shifted.step_started(4, 7, t);
    CHECK(shifted.typical_step_seconds(t).value_or(0) == doctest::Approx(620).epsilon(0.02));
    CHECK(*shifted.eta_seconds(t) == doctest::Approx(typical_after_step_2).epsilon(0.02));

    azops::EtaEstimator far(&history, "docker_build");
    far.start(0);
    far.step_started(1, 10, 0);
    CHECK(*far.eta_seconds(0) == doctest::Approx(1000));  // the average
    CHECK(far.source() == "history");
}

TEST_CASE("edge cases: step 0, total 0, NaN times, time going back") {
    const auto history = past_builds();
    azops::EtaEstimator eta(&history, "docker_build");
    eta.step_started(1, 6, std::nan(""));  // ignored, not even a start
    CHECK_FALSE(eta.eta_seconds(0).has_value());
    eta.step_started(0, 6, 0);  // "not started yet": the average
    CHECK(*eta.eta_seconds(0) == doctest::Approx(1000));
    eta.step_started(2, 0, 10);  // total unknown: still the average
    CHECK(*eta.eta_seconds(10) == doctest::Approx(990));
    CHECK(*eta.eta_seconds(5) == doctest::Approx(990));  // "now" before the last event is the last event

    azops::EtaEstimator none(nullptr, "docker_build");
    none.step_started(0, 0, 0);
    CHECK_FALSE(none.eta_seconds(0).has_value());
}

TEST_CASE("steps going backwards run again — the estimate stays sane and never negative") {
    const auto history = past_builds();
    azops::EtaEstimator eta(&history, "docker_build");
    eta.start(0);
    double t = run_steps(eta, {62, 2.5, 620});
    eta.step_started(4, 6, t);
    const double at_four = *eta.eta_seconds(t);
    eta.step_started(2, 6, t + 1);  // a retry from step 2
    const double again = *eta.eta_seconds(t + 1);
    CHECK(eta.source() == "history");
    CHECK(again > at_four + 600);  // the long step 3 lies ahead once more
    CHECK(again < typical_total);

    // Another total (a new stage or a rebuilt Dockerfile) starts the record afresh.
    eta.step_started(1, 6, t + 2);
    eta.step_started(1, 9, t + 3);
    const auto other = eta.eta_seconds(t + 3);
    CHECK((!other || *other >= 0));
}

TEST_CASE("a step longer than all of history: time left stays positive and the rest is scaled up") {
    const auto history = past_builds();
    azops::EtaEstimator eta(&history, "docker_build");
    eta.start(0);
    const double t = run_steps(eta, {62.5, 2.5});
    eta.step_started(3, 6, t);  // history: 600..640 s
    double previous = 0;
    for (double elapsed : {700.0, 1500.0, 5000.0, 50000.0}) {
        CAPTURE(elapsed);
        const auto left = eta.eta_seconds(t + elapsed);
        REQUIRE(left);
        CHECK(*left > 323);       // steps 4..6 at least as long as usual
        CHECK(*left > previous);  // the longer it runs, the slower the run looks
        previous = *left;
        const auto range = eta.eta_range(t + elapsed);
        REQUIRE(range);
        CHECK(range->first <= *left);
        CHECK(range->second >= *left);
    }
}

TEST_CASE("the range brackets the estimate and narrows as this run's speed becomes known") {
    const auto history = past_builds();
    azops::EtaEstimator eta(&history, "docker_build");
    eta.start(0);
    eta.step_started(1, 6, 0);
    const double left0 = *eta.eta_seconds(0);
    const auto range0 = eta.eta_range(0);
    REQUIRE(range0);
    CHECK(range0->first < left0);
    CHECK(range0->second > left0);
    const double t = run_steps(eta, {62.5, 2.5, 620, 5});
    eta.step_started(5, 6, t);
    const double left = *eta.eta_seconds(t);
    const auto range = eta.eta_range(t);
    REQUIRE(range);
    CHECK(range->first < left);
    CHECK(range->second > left);
    CHECK((range->second - range->first) / left < (range0->second - range0->first) / left0);
}

TEST_CASE("benchmark tasks: history's mean per task, then blended with this run's tasks") {
    const auto history = past_builds();  // benchmark_per_task: 180 s
    azops::EtaEstimator eta(&history, azops::benchmark_task_key);
    eta.start(0);
    eta.task_progress(0, 20, 0);
    CHECK(*eta.eta_seconds(0) == doctest::Approx(3600));
    CHECK(eta.source() == "history");
    for (int k = 1; k <= 5; ++k) eta.task_progress(k, 20, k * 120.0);
    // Mean (5 x 120 + 3 x 180) / 8 = 142.5 s for each of the 15 tasks left.
    CHECK(*eta.eta_seconds(600) == doctest::Approx(15 * 142.5));
    CHECK(eta.source() == "blend");
    CHECK(*eta.eta_seconds(650) == doctest::Approx(15 * 142.5 - 50));
    CHECK(*eta.typical_step_seconds(600) == doctest::Approx(142.5));
    const auto range = eta.eta_range(600);
    REQUIRE(range);
    CHECK(range->first < 15 * 142.5);
    CHECK(range->second > 15 * 142.5);
    CHECK(eta.task_seconds() == std::vector<double>(5, 120.0));
    eta.task_progress(20, 20, 3000);
    CHECK(*eta.eta_seconds(3000) == doctest::Approx(0));
}

TEST_CASE("benchmark tasks without history, several at once, and a run far from history") {
    azops::EtaEstimator own(nullptr, azops::benchmark_task_key);
    own.start(0);
    own.task_progress(0, 20, 0);
    CHECK_FALSE(own.eta_seconds(60).has_value());
    own.task_progress(3, 20, 360);  // three reported at once share the 360 s
    CHECK(own.task_seconds() == std::vector<double>(3, 120.0));
    CHECK(*own.eta_seconds(360) == doctest::Approx(17 * 120));
    CHECK(own.source() == "progress");

    const auto history = past_builds();
    azops::EtaEstimator slow(&history, azops::benchmark_task_key);
    slow.start(0);
    slow.task_progress(3, 20, 3 * 1800.0);  // 10x history's 180 s
    CHECK(*slow.eta_seconds(5400) == doctest::Approx(17 * 1800));
    CHECK(slow.source() == "progress");
}

TEST_CASE("plain percent progress, with and without history") {
    azops::EtaEstimator own(nullptr, "windows_boot");
    own.start(0);
    own.progress(0.25, 100);
    CHECK(*own.eta_seconds(100) == doctest::Approx(300));
    CHECK(own.source() == "progress");
    CHECK_FALSE(own.eta_range(100).has_value());
    own.progress(std::nan(""), 120);
    CHECK(*own.eta_seconds(100) == doctest::Approx(300));

    azops::History history;
    history.record_task("windows_boot", 800);
    history.record_task("windows_boot", 1000);
    azops::EtaEstimator eta(&history, "windows_boot");
    eta.start(0);
    eta.progress(0, 0);
    CHECK(*eta.eta_seconds(100) == doctest::Approx(800));
    CHECK(eta.source() == "history");
    eta.progress(0.5, 400);
    // 0.5 x (900 x 0.5) + 0.5 x (400 s for the other half)
    CHECK(*eta.eta_seconds(400) == doctest::Approx(425));
    CHECK(eta.source() == "blend");
    REQUIRE(eta.eta_range(400));
    eta.progress(1.5, 700);
    CHECK(*eta.eta_seconds(700) == doctest::Approx(0));
}

TEST_CASE("StallDetector: silence longer than max(5 min, 3x the typical step)") {
    azops::StallDetector stall;
    CHECK_FALSE(stall.stalled_seconds(1000, std::nullopt).has_value());  // no sign of life yet
    stall.sign_of_life(100);
    CHECK_FALSE(stall.stalled_seconds(399, std::nullopt).has_value());
    CHECK(*stall.stalled_seconds(401, std::nullopt) == doctest::Approx(301));
    CHECK(stall.threshold(600.0) == doctest::Approx(1800));
    CHECK_FALSE(stall.stalled_seconds(1800, 600.0).has_value());
    CHECK(*stall.stalled_seconds(1901, 600.0) == doctest::Approx(1801));
    stall.sign_of_life(50);  // older than what is known: changes nothing
    CHECK(*stall.last_sign_of_life() == doctest::Approx(100));

    azops::StallDetector quick(60, 2);
    quick.sign_of_life(0);
    CHECK(*quick.stalled_seconds(61, 10.0) == doctest::Approx(61));
}

TEST_CASE("EtaEstimator stall: judged against history's current step, reset by output") {
    const auto history = past_builds();
    azops::EtaEstimator eta(&history, "docker_build");
    eta.start(0);
    const double t = run_steps(eta, {62.5, 2.5});
    eta.step_started(3, 6, t);  // typical 620 s: threshold about 3 x 620
    CHECK(*eta.typical_step_seconds(t) == doctest::Approx(620).epsilon(0.02));
    CHECK_FALSE(eta.stalled_seconds(t + 1000).has_value());
    const auto stuck = eta.stalled_seconds(t + 2000);
    REQUIRE(stuck);
    CHECK(*stuck == doctest::Approx(2000));
    eta.sign_of_life(t + 1900);  // a log line
    CHECK_FALSE(eta.stalled_seconds(t + 2000).has_value());
    CHECK(*eta.last_sign_of_life() == doctest::Approx(t + 1900));

    // No history: the 5-minute floor.
    azops::EtaEstimator bare(nullptr, "docker_build");
    bare.step_started(1, 6, 0);
    CHECK(*bare.stalled_seconds(301) == doctest::Approx(301));

    azops::EtaOptions options;
    options.stall_min_seconds = 30;
    options.stall_step_factor = 1;
    azops::EtaEstimator eager(&history, "docker_build", options);
    eager.step_started(1, 6, 0);
    CHECK(eager.stalled_seconds(70).has_value());  // typical step 1: 62.5 s
}

TEST_CASE("a finished run goes back into history and shapes the next estimate") {
    azops::EtaEstimator first(nullptr, "docker_build");
    first.start(0);
    run_steps(first, {0.3, 0.2}, 0, {true, true});
    CHECK_FALSE(first.finished_run().has_value());  // steps 3..6 not finished
    for (int step = 3; step <= 6; ++step) {
        first.step_started(step, 6, 0.5 + (step - 3) * 50.0);
        first.step_finished(step, 0.5 + (step - 2) * 50.0);
    }
    const auto run = first.finished_run();
    REQUIRE(run);
    CHECK(run->step_seconds.size() == 6);
    CHECK(run->step_seconds[2] == doctest::Approx(50));
    CHECK(run->cached_steps == std::vector<int>{1, 2});

    azops::History history;
    history.record("docker_build", run->step_seconds, run->cached_steps);
    azops::EtaEstimator next(&history, "docker_build");
    next.start(0);
    next.step_started(3, 6, 0);
    CHECK(*next.eta_seconds(0) == doctest::Approx(200 * unknown_speed).epsilon(0.05));
    CHECK(next.source() == "history");
}

TEST_CASE("a finished run's steps add up to the whole operation: time before, between and after them counts") {
    // A BuildKit build: 40 s of definition and metadata before [1/3], a 5 s gap, 90 s of export.
    azops::EtaEstimator eta(nullptr, "docker_build");
    eta.start(0);
    eta.step_started(1, 3, 40);
    eta.step_finished(1, 100);
    eta.step_started(2, 3, 105);
    eta.step_finished(2, 105.1, true);
    eta.step_started(3, 3, 105.1);
    eta.step_finished(3, 400);
    const auto run = eta.finished_run(490);
    REQUIRE(run);
    CHECK(run->step_seconds[0] == doctest::Approx(40 + 60 + 5));
    CHECK(run->step_seconds[1] == doctest::Approx(0.1));
    CHECK(run->step_seconds[2] == doctest::Approx(294.9 + 90));
    CHECK(run->total_seconds() == doctest::Approx(490));
    CHECK(run->cached_steps == std::vector<int>{2});
    CHECK(eta.finished_run()->total_seconds() == doctest::Approx(400));  // no end given: up to the last step

    // Steps the program numbered itself: the last one ends when the operation does.
    azops::EtaEstimator told(nullptr, "windows_boot");
    told.start(10);
    told.step_started(1, 2, 10);
    told.step_started(2, 2, 70);
    CHECK_FALSE(told.finished_run().has_value());
    const auto whole = told.finished_run(100);
    REQUIRE(whole);
    CHECK(whole->step_seconds == std::vector<double>{60, 30});
    CHECK_FALSE(told.finished_run(std::nan("")).has_value());

    // Steps of parallel stages overlap: an overlap is no negative gap.
    azops::EtaEstimator parallel(nullptr, "docker_build");
    parallel.start(0);
    parallel.step_started(1, 2, 0);
    parallel.step_started(2, 2, 1);
    parallel.step_finished(2, 30);
    parallel.step_finished(1, 50);
    const auto overlapped = parallel.finished_run(50);
    REQUIRE(overlapped);
    CHECK(overlapped->step_seconds[0] == doctest::Approx(50));
    CHECK(overlapped->step_seconds[1] == doctest::Approx(29));
}

TEST_CASE("the current step's time left: mean minus elapsed early on, never 0 while it runs") {
    using azops::detail::eta::lognormal_time_left;
    CHECK(lognormal_time_left(100, 0.2, 0) == doctest::Approx(100 * std::exp(0.02)));
    CHECK(lognormal_time_left(100, 0.2, 40) == doctest::Approx(100 * std::exp(0.02) - 40).epsilon(0.01));
    for (double elapsed : {150.0, 300.0, 1000.0, 1e4, 1e6}) {
        CAPTURE(elapsed);
        CHECK(lognormal_time_left(100, 0.2, elapsed) > 0);
    }
    // The exact form and the far-tail form meet where one hands over to the other (z = 8).
    const double at_handover = 100 * std::exp(8 * 0.2);
    CHECK(lognormal_time_left(100, 0.2, at_handover * 0.999) ==
          doctest::Approx(lognormal_time_left(100, 0.2, at_handover * 1.001)).epsilon(0.15));
    CHECK(lognormal_time_left(0, 0.2, 10) == 0);

    // A one-step operation running past every past run still has time left.
    azops::History history;
    for (double s : {300.0, 320.0, 310.0}) history.record("vm_create", {s});
    azops::EtaEstimator eta(&history, "vm_create");
    eta.step_started(1, 1, 0);
    for (double now : {400.0, 900.0, 5000.0}) {
        CAPTURE(now);
        REQUIRE(eta.eta_seconds(now));
        CHECK(*eta.eta_seconds(now) > 0);
    }
}

TEST_CASE("a new step that history never had: no time for it, the past steps after it still count") {
    const auto history = past_builds();
    azops::EtaEstimator eta(&history, "docker_build");
    eta.start(0);
    double t = 0;
    const double seconds[] = {62.5, 2.5};
    for (int step = 1; step <= 2; ++step) {
        eta.step_started(step, 7, t);
        t += seconds[step - 1];
        eta.step_finished(step, t);
    }
    eta.step_started(3, 7, t);  // the inserted step, before the long one
    eta.step_finished(3, t + 40);
    eta.step_started(4, 7, t + 40);
    eta.step_finished(4, t + 660);  // the long past step 3
    eta.step_started(5, 7, t + 660);
    const double rest = 5 + 305 + 13;
    CHECK(*eta.eta_seconds(t + 660) == doctest::Approx(rest).epsilon(0.05));
    // Two new steps, the second still running: past steps 3..6 lie ahead, not all six.
    azops::EtaEstimator running_new(&history, "docker_build");
    running_new.start(0);
    t = 0;
    const double first[] = {62.5, 2.5, 40};
    for (int step = 1; step <= 3; ++step) {
        running_new.step_started(step, 8, t);
        t += first[step - 1];
        running_new.step_finished(step, t);
    }
    running_new.step_started(4, 8, t);
    CHECK_FALSE(running_new.typical_step_seconds(t).has_value());
    CHECK(*running_new.eta_seconds(t) == doctest::Approx(typical_after_step_2).epsilon(0.05));
}

namespace {

// Six-step builds: three fresh runs and `rebuilds` runs whose first five steps came from the cache.
azops::History with_rebuilds(int rebuilds) {
    azops::History history;
    history.record("docker_build", {60, 2, 600, 5, 300, 13});
    history.record("docker_build", {65, 3, 620, 4, 305, 13});
    history.record("docker_build", {62, 2, 610, 6, 310, 14});
    for (int i = 0; i < rebuilds; ++i) history.record("docker_build", {0.1, 0.1, 0.1, 0.1, 0.1, 12}, {1, 2, 3, 4, 5});
    return history;
}

// Steps 1..3 of a 6-step build came from the cache (50 ms each); step 4 started at the returned time.
double three_cache_hits(azops::EtaEstimator& eta) {
    eta.start(0);
    double t = 0;
    for (int step = 1; step <= 3; ++step) {
        eta.step_started(step, 6, t);
        t += 0.05;
        eta.step_finished(step, t, true);
    }
    eta.step_started(4, 6, t);
    return t;
}

}  // namespace

TEST_CASE("a cache streak: where past rebuilds stopped answering from the cache, this one likely stops too") {
    // History's rebuilds took steps 1..5 from the cache: this rebuild probably has only step 6 to do.
    const auto history = with_rebuilds(2);
    azops::EtaEstimator eta(&history, "docker_build");
    const double t = three_cache_hits(eta);
    const auto streak = eta.estimate(t + 0.01);
    REQUIRE(streak.seconds);
    CHECK(*streak.seconds < 20);
    // The range still holds the other courses: the cache may stop at step 4 and all be built.
    REQUIRE(streak.range);
    CHECK(streak.range->high > 10 * *streak.seconds);

    // Step 4 has now run for two seconds, forty times as long as this run's cache hits: it is
    // real work, and steps 5 and 6 come after it.
    const auto working = eta.estimate(t + 2);
    REQUIRE(working.seconds);
    CHECK(*working.seconds == doctest::Approx((5 + 305 + 13 - 2) * unknown_speed).epsilon(0.03));

    // Without past rebuilds, three hits say little of where the cache stops; once the step has
    // outlasted them, it is work all the same.
    const auto fresh_history = with_rebuilds(0);
    azops::EtaEstimator no_rebuilds(&fresh_history, "docker_build");
    const double t2 = three_cache_hits(no_rebuilds);
    CHECK(*no_rebuilds.eta_seconds(t2 + 2) == doctest::Approx(*working.seconds).epsilon(0.03));
}

TEST_CASE("a streak ends with the first step that was not cached") {
    const auto history = with_rebuilds(2);
    azops::EtaEstimator eta(&history, "docker_build");
    eta.start(0);
    eta.step_started(1, 6, 0);
    eta.step_finished(1, 0.05, true);
    eta.step_started(2, 6, 0.05);
    eta.step_finished(2, 2.05);  // built, as history's fresh runs did
    eta.step_started(3, 6, 2.05);
    // Step 3 and everything after it are work: no chance that the cache answers them.
    const auto e = eta.estimate(2.06);
    REQUIRE(e.seconds);
    CHECK(*e.seconds > 900);
}

TEST_CASE("step_profile: past runs on faster or slower machines do not make the steps look erratic") {
    using azops::detail::eta::step_profile;
    // The same build on machines 1.25x slower and 0.8x as slow: each step's own variation is nil.
    std::vector<azops::PastRun> paced = {{{60, 2, 600, 5, 300}, {}}, {{75, 2.5, 750, 6.25, 375}, {}},
                                         {{48, 1.6, 480, 4, 240}, {}}};
    // Steps that vary independently of each other by as much.
    std::vector<azops::PastRun> erratic = {{{60, 2, 600, 5, 300}, {}}, {{75, 1.6, 600, 4, 375}, {}},
                                           {{48, 2.5, 750, 6.25, 240}, {}}};
    const auto pointers = [](const std::vector<azops::PastRun>& runs) {
        std::vector<const azops::PastRun*> out;
        for (const auto& r : runs) out.push_back(&r);
        return out;
    };
    const auto same_pace = step_profile(pointers(paced), 5);
    const auto independent = step_profile(pointers(erratic), 5);
    for (std::size_t j = 0; j < 5; ++j) {
        CAPTURE(j);
        CHECK(same_pace.spread[j] < 0.15);
        CHECK(independent.spread[j] > same_pace.spread[j] * 1.5);
        CHECK(same_pace.typical_spread[j] < same_pace.spread[j]);
        CHECK(same_pace.known[j]);
    }
    // The typical duration stays the plain median of the past runs.
    CHECK(same_pace.typical[2] == doctest::Approx(600));
    CHECK(independent.typical[0] == doctest::Approx(60));

    // A step only ever taken from the cache: its cached time stands in, flagged as not known.
    std::vector<azops::PastRun> cached = {{{0.2, 600}, {1}}, {{0.3, 620}, {1}}};
    const auto from_cache = step_profile(pointers(cached), 2);
    CHECK_FALSE(from_cache.known[0]);
    CHECK(from_cache.typical[0] == doctest::Approx(0.25));
    CHECK(from_cache.typical_spread[0] == 0);
}

TEST_CASE("speed_belief: a running step counts once it has outrun what the finished steps predict") {
    using azops::detail::eta::speed_belief;
    const auto median_of = [](const std::vector<azops::detail::eta::SpeedPoint>& belief) {
        double below = 0;
        for (const auto& p : belief) {
            below += p.weight;
            if (below >= 0.5) return p.log_scale;
        }
        return belief.back().log_scale;
    };
    const double log_typical = std::log(600.0);
    const auto plain = speed_belief(0.1, 0.04, std::nullopt, 0.1, 0, 5);
    double total = 0;
    for (const auto& p : plain) total += p.weight;
    CHECK(total == doctest::Approx(1.0));
    CHECK(median_of(plain) == doctest::Approx(0.1).epsilon(0.05));
    // 640 s of a step expected to take 600 * e^0.1 = 663 s: nothing changes yet.
    CHECK(median_of(speed_belief(0.1, 0.04, log_typical, 0.1, 640, 5)) == doctest::Approx(0.1).epsilon(0.05));
    // 1200 s: the run is at least about twice as slow as history.
    const auto outrun = speed_belief(0.1, 0.04, log_typical, 0.1, 1200, 5);
    CHECK(median_of(outrun) > std::log(1200.0 / 600) - 0.1);
    // The longer it runs, the slower the run looks.
    CHECK(median_of(speed_belief(0.1, 0.04, log_typical, 0.1, 2400, 5)) > median_of(outrun));
}

TEST_CASE("the time left of a running step: its variance matches the lognormal's, by integration") {
    using azops::detail::eta::lognormal_time_left;
    using azops::detail::eta::lognormal_time_left_variance;
    const double median = 100, sigma = 0.3;
    for (double elapsed : {0.0, 50.0, 100.0, 180.0}) {
        CAPTURE(elapsed);
        // E[(X - e)^k | X > e] by the midpoint rule over the log of X.
        double mass = 0, first = 0, second = 0;
        const double lo = std::log(std::max(elapsed, 1e-9)), hi = std::log(median) + 10 * sigma;
        const int n = 200000;
        for (int i = 0; i < n; ++i) {
            const double y = lo + (hi - lo) * (i + 0.5) / n;
            const double z = (y - std::log(median)) / sigma;
            const double density = std::exp(-z * z / 2);
            const double left = std::exp(y) - elapsed;
            mass += density;
            first += density * left;
            second += density * left * left;
        }
        const double mean = first / mass;
        CHECK(lognormal_time_left(median, sigma, elapsed) == doctest::Approx(mean).epsilon(0.002));
        CHECK(lognormal_time_left_variance(median, sigma, elapsed) ==
              doctest::Approx(second / mass - mean * mean).epsilon(0.005));
    }
    CHECK(lognormal_time_left_variance(0, sigma, 10) == 0);
    // Far past every past run, the tail is close to exponential: its sd is its mean.
    const double far = lognormal_time_left(median, 0.1, 1e5);
    CHECK(lognormal_time_left_variance(median, 0.1, 1e5) == doctest::Approx(far * far));
}

TEST_CASE("mixture_quantile and weighted_median") {
    using azops::detail::eta::mixture_quantile;
    using azops::detail::eta::weighted_median;
    // One lognormal: its own quantiles.
    const std::vector<azops::detail::eta::LognormalPart> one = {{std::log(100.0), 0.5, 1.0}};
    CHECK(mixture_quantile(one, 0.5) == doctest::Approx(100).epsilon(1e-6));
    CHECK(mixture_quantile(one, 0.9) == doctest::Approx(100 * std::exp(1.2816 * 0.5)).epsilon(1e-3));
    // Two far apart, 30 % and 70 %: the 10th percentile lies in the first, the median in the second.
    const std::vector<azops::detail::eta::LognormalPart> two = {{std::log(10.0), 0.1, 0.3},
                                                                {std::log(1000.0), 0.1, 0.7}};
    CHECK(mixture_quantile(two, 0.1) < 12);
    CHECK(mixture_quantile(two, 0.5) > 800);
    CHECK(mixture_quantile(two, 0.5) < 1200);
    // A point mass (no spread) is found where it lies.
    CHECK(mixture_quantile({{std::log(42.0), 0.0, 1.0}}, 0.5) == doctest::Approx(42).epsilon(1e-6));

    CHECK(weighted_median({}) == 0);
    CHECK(weighted_median({{7, 1}}) == 7);
    // Symmetric weights: the middle value itself.
    CHECK(weighted_median({{1, 1}, {2, 2}, {3, 1}}) == doctest::Approx(2));
    // Between two equal weights it interpolates, so it moves smoothly as the weights do.
    CHECK(weighted_median({{10, 1}, {20, 1}}) == doctest::Approx(15));
    CHECK(weighted_median({{20, 1}, {10, 1.2}}) < 15);
}

TEST_CASE("the range holds the real remaining time about four times in five") {
    // Runs drawn from the same model as their history: one speed per run (lognormal, sd 0.25 of
    // the log), each step +-8 % around it. The share of estimates whose range holds the truth
    // must be near the 80 % the 10th-90th percentile promises.
    std::uint64_t state = 12345;
    const auto unit = [&state] {
        state = state * 6364136223846793005ULL + 1442695040888963407ULL;
        return static_cast<double>(state >> 11) * (1.0 / 9007199254740992.0);
    };
    const auto normal = [&unit] { return std::sqrt(-2 * std::log(std::max(unit(), 1e-300))) * std::cos(6.283185307 * unit()); };
    const std::vector<double> base = {60, 2, 600, 5, 300, 13, 120, 4};
    int inside = 0, points = 0;
    for (int run = 0; run < 150; ++run) {
        azops::History history;
        for (int past = 0; past < 5; ++past) {
            const double pace = std::exp(0.05 * normal());
            std::vector<double> seconds;
            for (double b : base) seconds.push_back(b * pace * std::exp(0.08 * normal()));
            history.record("docker_build", seconds);
        }
        const double speed = std::exp(0.25 * normal());
        std::vector<double> seconds;
        for (double b : base) seconds.push_back(b * speed * std::exp(0.08 * normal()));
        double duration = 0;
        for (double s : seconds) duration += s;
        for (double share : {0.3, 0.5, 0.7}) {
            const double now = share * duration;
            azops::EtaEstimator eta(&history, "docker_build");
            eta.start(0);
            double t = 0;
            for (std::size_t i = 0; i < seconds.size(); ++i) {
                eta.step_started(static_cast<int>(i) + 1, static_cast<int>(base.size()), t);
                if (t + seconds[i] > now) break;
                t += seconds[i];
                eta.step_finished(static_cast<int>(i) + 1, t);
            }
            const auto range = eta.eta_range(now);
            REQUIRE(range);
            ++points;
            if (duration - now >= range->first && duration - now <= range->second) ++inside;
        }
    }
    const double share = static_cast<double>(inside) / points;
    CAPTURE(share);
    CHECK(share > 0.7);
    CHECK(share < 0.92);
}

TEST_CASE("a Dockerfile that gained a step: a long step running is not taken for a short past one") {
    // History: 60, 2, 2, 600, 50. This build gained a step after the long one; its third step
    // happened to take a quarter of its usual time, which alone fits "a step was inserted third".
    azops::History history;
    for (int i = 0; i < 3; ++i) history.record("docker_build", {60, 2, 2, 600, 50});
    azops::EtaEstimator eta(&history, "docker_build");
    eta.start(0);
    double t = 0;
    const double seconds[] = {60, 2, 0.5};
    for (int step = 1; step <= 3; ++step) {
        eta.step_started(step, 6, t);
        t += seconds[step - 1];
        eta.step_finished(step, t);
    }
    eta.step_started(4, 6, t);
    // 100 s into the fourth step it is the 600 s one, not a 2 s step run 50 times too long (which
    // would make the whole run look 50 times slower). The quick third step makes the run look a
    // little faster than history, so a bit less than 600 - 100 + 50 is left.
    const auto left = eta.eta_seconds(t + 100);
    REQUIRE(left);
    CHECK(*left > 350);
    CHECK(*left < 600);
}

TEST_CASE("speed_belief stays within the factor beyond which a run is not comparable with history") {
    using azops::detail::eta::speed_belief;
    for (double elapsed : {1e4, 1e6}) {
        CAPTURE(elapsed);
        const auto belief = speed_belief(0.0, 0.09, std::log(600.0), 0.1, elapsed, 5);
        REQUIRE_FALSE(belief.empty());
        for (const auto& p : belief) CHECK(p.log_scale <= std::log(5.0) + 1e-9);
    }
    const auto far_fast = speed_belief(-3.0, 0.01, std::nullopt, 0.1, 0, 5);
    for (const auto& p : far_fast) CHECK(p.log_scale >= -std::log(5.0) - 1e-9);
}
