#include <azops/azops.hpp>

int count_lines_in_b() {
    azops::LogTail tail(2);
    tail.push(azops::sanitize_line("b"));
    return static_cast<int>(tail.size());
}
