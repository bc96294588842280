// Does a Tracker's memory stay flat however long the output runs? Streams a docker build log
// through one Tracker (docker_build operation, real status file written by its own thread, as in
// bench_support.hpp) line by line, as `azops run` does, and reads VmRSS after a warm-up and at the end.
//
//   tracker_memory LOG [LINES] [WARMUP]     defaults: 10000000 lines, 100000 of them warm-up
//
// Prints what it measured, then one line `lines=N passes=P rss_warm_kib=A rss_end_kib=B growth_kib=C`.
// A log shorter than LINES is read again from its start (a second pass is output after the build
// ended: the parser no longer tracks it, everything else still handles it); `passes` says how often.
#include "bench_support.hpp"

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

namespace {

struct Measured {
    std::uint64_t lines = 0;
    int passes = 0;
    long rss_warm_kib = 0;
    long rss_end_kib = 0;
};

// Reads `log` in 64 KiB chunks, as azops run reads a pipe, until `limit` lines were logged.
Measured stream(const std::string& log, std::uint64_t limit, std::uint64_t warmup) {
    azops_bench::TempFolder folder("azops-bench-memory");
    azops::Tracker tracker(azops_bench::tracker_options(folder.path()));
    azops_bench::start_docker_build(tracker);
    Measured m;
    std::vector<char> buffer(64 * 1024);
    azops::LineSplitter splitter;
    const auto on_line = [&](std::string_view line, std::size_t cut_bytes) {
        if (m.lines == limit) return;
        tracker.log(line, cut_bytes);
        if (++m.lines == warmup) m.rss_warm_kib = azops_bench::resident_kib().value_or(-1);
    };
    while (m.lines < limit) {
        const int fd = ::open(log.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) throw std::runtime_error("cannot read " + log + ": " + std::strerror(errno));
        ++m.passes;
        const std::uint64_t before = m.lines;
        ssize_t n = 0;
        while (m.lines < limit && (n = ::read(fd, buffer.data(), buffer.size())) > 0) {
            splitter.feed(std::string_view(buffer.data(), static_cast<std::size_t>(n)), on_line);
        }
        const int read_error = n < 0 ? errno : 0;
        ::close(fd);
        if (read_error != 0) throw std::runtime_error("cannot read " + log + ": " + std::strerror(read_error));
        splitter.finish(on_line);
        if (m.lines == before) throw std::runtime_error(log + " holds no lines");
    }
    m.rss_end_kib = azops_bench::resident_kib().value_or(-1);
    return m;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2 || argc > 4) {
        std::cerr << "usage: " << argv[0] << " LOG [LINES] [WARMUP]\n";
        return 2;
    }
    const std::uint64_t limit = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 10'000'000;
    const std::uint64_t warmup = argc > 3 ? std::strtoull(argv[3], nullptr, 10) : 100'000;
    if (warmup == 0 || warmup >= limit) {
        std::cerr << "tracker_memory: need 0 < WARMUP < LINES\n";
        return 2;
    }
    try {
        const Measured m = stream(argv[1], limit, warmup);
        if (m.rss_warm_kib < 0 || m.rss_end_kib < 0) {
            std::cerr << "tracker_memory: /proc/self/status has no VmRSS\n";
            return 1;
        }
        std::cout << "VmRSS after " << warmup << " lines: " << m.rss_warm_kib << " KiB; after " << m.lines
                  << " lines: " << m.rss_end_kib << " KiB (" << m.passes << " pass(es) over " << argv[1] << ")\n"
                  << "lines=" << m.lines << " passes=" << m.passes << " rss_warm_kib=" << m.rss_warm_kib
                  << " rss_end_kib=" << m.rss_end_kib << " growth_kib=" << (m.rss_end_kib - m.rss_warm_kib) << "\n";
    } catch (const std::exception& e) {
        std::cerr << "tracker_memory: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
