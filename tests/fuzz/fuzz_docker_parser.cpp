// libFuzzer target: arbitrary bytes, split into lines, sanitised and fed to DockerStepParser.
//
//   clang++ -std=c++17 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
//           -Iinclude tests/fuzz/fuzz_docker_parser.cpp -o /tmp/fuzz_docker_parser
//   mkdir -p /tmp/docker_corpus
//   /tmp/fuzz_docker_parser -dict=tests/fuzz/docker.dict -max_len=20000 -len_control=0 -max_total_time=30
//           /tmp/docker_corpus tests/fuzz/corpus/docker
//
// Besides crashes, leaks and undefined behaviour, it traps when the parser breaks a promise: step and
// progress going backwards, step beyond the total, progress outside 0..1, unbounded queues.
#include <azops/docker_parser.hpp>
#include <azops/log_tail.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace {

// What the parser promises after every line, whatever it was fed.
class Invariants {
public:
    void check(const azops::DockerStepParser& p) {
        expect(p.step() >= last_step_ && p.total_steps() >= last_total_);
        expect(p.step() >= 0 && p.step() <= p.total_steps());
        expect(p.progress_fraction() >= last_progress_ && p.progress_fraction() >= 0.0 && p.progress_fraction() <= 1.0);
        expect(p.steps().size() <= azops::detail::docker::max_steps);
        expect(p.instruction().size() <= azops::detail::docker::max_text);
        expect(p.error().size() <= azops::detail::docker::max_text);
        if (p.outcome() == azops::BuildOutcome::succeeded) expect(p.progress_fraction() == 1.0);
        last_step_ = p.step();
        last_total_ = p.total_steps();
        last_progress_ = p.progress_fraction();
    }

private:
    static void expect(bool promise_kept) {
        if (!promise_kept) __builtin_trap();
    }
    int last_step_ = 0;
    int last_total_ = 0;
    double last_progress_ = 0.0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    azops::DockerStepParser timed;                                 // clock: one second per line
    azops::DockerStepParser from_log(azops::StepTiming::log_only);
    azops::DockerStepParser raw_lines;                             // unsanitised lines must not hurt it either
    Invariants timed_checks, log_checks;
    azops::LineSplitter splitter;
    std::string scratch;
    double now = 0.0;
    std::size_t line_number = 0;
    const auto on_line = [&](std::string_view raw) {
        const std::string_view clean = azops::sanitize_line_into(raw, scratch);
        timed.feed(clean, now);
        from_log.feed(clean);
        raw_lines.feed(raw, now);
        now += 1.0;
        timed_checks.check(timed);
        log_checks.check(from_log);
        (void)timed.phase();
        // Takers come and go: sometimes events pile up to their bound before anyone takes them.
        if (++line_number % 5 == 0) {
            for (const auto& event : timed.take_events()) {
                if (event.instruction.size() > azops::detail::docker::max_text) __builtin_trap();
            }
        }
    };
    splitter.feed(input, on_line);
    splitter.finish(on_line);
    if (from_log.take_events().size() > azops::detail::docker::max_pending_events) __builtin_trap();
    (void)raw_lines.take_events();
    return 0;
}
