// The embedded page (include/azops/detail/dashboard_html.hpp) against its source, web/azure_ops.html.
#include <azops/detail/dashboard_html.hpp>

#include <doctest/doctest.h>

#include <cstddef>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#ifndef AZOPS_SOURCE_DIR
#error "AZOPS_SOURCE_DIR must name the repository root (the build systems define it)"
#endif

namespace {

// clang -Wpedantic warns on string literals longer than this, after concatenation.
static_assert(azops::detail::dashboard_html.size() < 65536, "the page must stay under clang's string limit");
static_assert(azops::detail::dashboard_html.substr(0, 15) == "<!DOCTYPE html>");

std::string read_file(const std::string& relative) {
    const std::string path = std::string(AZOPS_SOURCE_DIR) + "/" + relative;
    std::ifstream in(path, std::ios::binary);
    REQUIRE_MESSAGE(in.good(), "cannot open " << path);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::size_t count(std::string_view haystack, std::string_view needle) {
    std::size_t n = 0;
    for (auto at = haystack.find(needle); at != std::string_view::npos; at = haystack.find(needle, at + 1)) ++n;
    return n;
}

// The raw-string pieces of the generated header, as written between R"azops_web( and )azops_web".
std::vector<std::string> raw_pieces(const std::string& header) {
    const std::string open = "R\"azops_web(";
    const std::string close = ")azops_web\"";
    std::vector<std::string> pieces;
    for (auto start = header.find(open); start != std::string::npos; start = header.find(open, start)) {
        start += open.size();
        const auto end = header.find(close, start);
        REQUIRE(end != std::string::npos);
        pieces.push_back(header.substr(start, end - start));
        start = end + close.size();
    }
    return pieces;
}

}  // namespace

TEST_CASE("the embedded page is byte for byte web/azure_ops.html") {
    const std::string page = read_file("web/azure_ops.html");
    REQUIRE_FALSE(page.empty());
    CHECK(azops::detail::dashboard_html.size() == page.size());
    CHECK(azops::detail::dashboard_html == page);
}

TEST_CASE("the page holds the token placeholder exactly once, inside its meta tag") {
    const std::string_view page = azops::detail::dashboard_html;
    CHECK(count(page, "__AZOPS_TOKEN__") == 1);
    CHECK(count(page, "<meta name=\"azops-token\" content=\"__AZOPS_TOKEN__\">") == 1);
}

TEST_CASE("the page refers to no other host") {
    const std::string_view page = azops::detail::dashboard_html;
    CHECK(count(page, "http://") == 0);
    CHECK(count(page, "https://") == 0);
    CHECK(count(page, "src=\"//") == 0);   // protocol-relative addresses
    CHECK(count(page, "href=\"//") == 0);
    CHECK(count(page, "url(") == 0);       // CSS fetches (fonts, images)
    CHECK(count(page, "@import") == 0);
    CHECK(count(page, "<script src") == 0);
    CHECK(count(page, "<link rel=\"stylesheet\"") == 0);
}

TEST_CASE("the generated header splits the page into pieces MSVC accepts") {
    const std::string header = read_file("include/azops/detail/dashboard_html.hpp");
    CHECK(count(header, "generated from web/azure_ops.html by tools/embed_web.py — do not edit") == 1);
    const auto pieces = raw_pieces(header);
    REQUIRE_FALSE(pieces.empty());
    std::string joined;
    for (std::size_t i = 0; i < pieces.size(); ++i) {
        CHECK(pieces[i].size() <= 16000);
        if (i + 1 < pieces.size()) CHECK(pieces[i].back() == '\n');  // cut after a line, never inside one
        joined += pieces[i];
    }
    CHECK(joined == azops::detail::dashboard_html);
}
