#include <azops/azops.hpp>

#include <iostream>

int main() {
    std::cout << "azops " << AZOPS_VERSION_STRING << ": " << azops::sanitize_line("\x1b[1mok\x1b[0m") << "\n";
    return 0;
}
