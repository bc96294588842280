// Built with only single_include/ on the include path: the one-file drop-in must be complete.
#include <azops/azops.hpp>

#include <fstream>
#include <iostream>
#include <sstream>

int main(int argc, char** argv) {
    if (argc != 2) return 2;
    {
        azops::TrackerOptions options;
        options.status_file = argv[1];
        azops::Tracker tracker(options);
        tracker.begin("single-header");
        tracker.operation("check", 2);
        tracker.step(2, 2, "last step");
        tracker.log("hello from the single header");
        tracker.succeed();
    }
    std::ifstream in(argv[1]);
    std::stringstream text;
    text << in.rdbuf();
    const auto parsed = azops::parse_status(text.str());
    if (!parsed.status || parsed.status->state != "succeeded" || parsed.status->log_tail.empty()) {
        std::cerr << "unexpected status: " << text.str() << "\n";
        return 1;
    }
    std::cout << "single header ok\n";
    return 0;
}
