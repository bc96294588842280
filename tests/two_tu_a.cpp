// With two_tu_b.cpp: every header included in two translation units must still link (inline rules).
#include <azops/azops.hpp>

int count_lines_in_b();

int main() {
    azops::LogTail tail(2);
    tail.push(azops::sanitize_line("a"));
    return count_lines_in_b() == 1 && tail.size() == 1 ? 0 : 1;
}
