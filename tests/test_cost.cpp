#include <azops/cost.hpp>

#include <doctest/doctest.h>

#include "test_helpers.hpp"

#include <cmath>
#include <string>

namespace {

const std::filesystem::path prices = std::filesystem::path(AZOPS_TEST_DATA_DIR) / "prices";

// Dollars to whole cents, the precision the page shows.
long cents(std::optional<double> usd) {
    REQUIRE(usd.has_value());
    return std::lround(*usd * 100.0);
}

std::string load_error(azops::RateTable& table, const std::filesystem::path& file) {
    try {
        table.load_override_file(file);
    } catch (const std::runtime_error& e) {
        return e.what();
    }
    return "no exception";
}

}  // namespace

TEST_CASE("VmState: every state has its word, and az's forms parse") {
    using azops::VmState;
    for (VmState s : {VmState::running, VmState::starting, VmState::stopping, VmState::stopped, VmState::deallocating,
                      VmState::deallocated, VmState::unknown}) {
        CHECK(azops::parse_vm_state(azops::to_string(s)) == s);
    }
    CHECK(azops::to_string(VmState::deallocating) == "deallocating");
    CHECK(azops::parse_vm_state("PowerState/deallocated") == VmState::deallocated);
    CHECK(azops::parse_vm_state("VM running") == VmState::running);
    CHECK(azops::parse_vm_state("  VM Stopping ") == VmState::stopping);
    CHECK(azops::parse_vm_state("Stopped (deallocated)") == VmState::deallocated);
    CHECK(azops::parse_vm_state("Stopped (Allocated)") == VmState::stopped);
    CHECK(azops::parse_vm_state("ProvisioningState/succeeded") == VmState::unknown);
    CHECK(azops::parse_vm_state("") == VmState::unknown);
}

TEST_CASE("billing rule: allocated states are billed, deallocating and deallocated are not, unknown is assumed") {
    using azops::VmState;
    CHECK(azops::is_billed(VmState::running));
    CHECK(azops::is_billed(VmState::starting));
    CHECK(azops::is_billed(VmState::stopping));
    CHECK(azops::is_billed(VmState::stopped));
    CHECK_FALSE(azops::is_billed(VmState::deallocating));
    CHECK_FALSE(azops::is_billed(VmState::deallocated));
    CHECK(azops::is_billed(VmState::unknown));
}

TEST_CASE("built-in table: the agreed eastus Linux prices, Windows, every listed size") {
    const auto table = azops::RateTable::built_in();
    const auto d4 = table.quote("Standard_D4ds_v5");
    REQUIRE(d4.usd_per_hour);
    CHECK(*d4.usd_per_hour == doctest::Approx(0.226));
    CHECK(d4.source == "built-in table eastus linux 2026-11");
    CHECK(*table.quote("Standard_D8ds_v5").usd_per_hour == doctest::Approx(0.452));
    const auto win = table.quote("Standard_D4ds_v5", azops::OsType::windows_os);
    CHECK(*win.usd_per_hour == doctest::Approx(0.410));
    CHECK(win.source == "built-in table eastus windows 2026-11");
    for (const char* family : {"ds_v5", "ads_v5", "s_v3"}) {
        for (int cpus : {2, 4, 8, 16, 32}) {
            const std::string size = "Standard_D" + std::to_string(cpus) + family;
            CAPTURE(size);
            const auto linux_rate = table.quote(size, azops::OsType::linux_os).usd_per_hour;
            const auto windows_rate = table.quote(size, azops::OsType::windows_os).usd_per_hour;
            REQUIRE(linux_rate);
            REQUIRE(windows_rate);
            // The Windows licence: 0.046 $ per vCPU-hour on top of Linux.
            CHECK(*windows_rate - *linux_rate == doctest::Approx(0.046 * cpus));
        }
    }
}

TEST_CASE("sizes are matched whatever their case, with or without the Standard_ prefix") {
    const auto table = azops::RateTable::built_in();
    CHECK(*table.quote("standard_d4ds_v5").usd_per_hour == doctest::Approx(0.226));
    CHECK(*table.quote("D4ds_v5").usd_per_hour == doctest::Approx(0.226));
    CHECK(*table.quote("Standard_D4ds_v5", azops::OsType::linux_os, "EastUS").usd_per_hour == doctest::Approx(0.226));
}

TEST_CASE("another region uses eastus's price and says so") {
    const auto q = azops::RateTable::built_in().quote("Standard_D8ds_v5", azops::OsType::linux_os, "westus2");
    REQUIRE(q.usd_per_hour);
    CHECK(*q.usd_per_hour == doctest::Approx(0.452));
    CHECK(q.source.find("no westus2 price") != std::string::npos);
    CHECK(q.source.find("eastus") != std::string::npos);
}

TEST_CASE("an unknown size is 'rate unknown' with a message, never $0.00") {
    azops::CostModel cost("Standard_NC24ads_A100_v4", azops::OsType::linux_os, "eastus");
    CHECK_FALSE(cost.rate_known());
    CHECK_FALSE(cost.hourly_rate().has_value());
    CHECK(cost.rate_source() == "unknown");
    CHECK(cost.rate_message().find("Standard_NC24ads_A100_v4") != std::string::npos);
    CHECK(cost.rate_message().find("rate override file") != std::string::npos);
    cost.set_state(azops::VmState::running, 0);
    CHECK_FALSE(cost.cost_until(3600).has_value());
    CHECK_FALSE(cost.cost_between(0, 3600).has_value());
    CHECK_FALSE(cost.projected_cost(3600, 600).has_value());
    CHECK(cost.billed_seconds(0, 3600) == doctest::Approx(3600));

    azops::CostModel no_vm;
    CHECK_FALSE(no_vm.rate_known());
    CHECK(no_vm.rate_message() == "no VM size given yet");
}

TEST_CASE("billing across running -> stopped -> deallocated -> running, to the cent") {
    azops::CostModel cost("Standard_D4ds_v5");  // 0.226 $/h
    const double t0 = 1000.0;                   // any monotonic clock
    cost.set_state(azops::VmState::running, t0);
    cost.set_state(azops::VmState::stopped, t0 + 1800);       // shut down inside the guest: still billed
    cost.set_state(azops::VmState::deallocating, t0 + 3600);  // az vm deallocate
    cost.set_state(azops::VmState::deallocated, t0 + 3700);
    cost.set_state(azops::VmState::starting, t0 + 5400);
    cost.set_state(azops::VmState::running, t0 + 5520);
    CHECK(cents(cost.cost_until(t0)) == 0);
    CHECK(cents(cost.cost_until(t0 + 1800)) == 11);  // 0.113
    CHECK(*cost.cost_until(t0 + 3600) == doctest::Approx(0.226));
    CHECK(*cost.cost_until(t0 + 5400) == doctest::Approx(0.226));  // nothing while deallocating/deallocated
    CHECK(*cost.cost_until(t0 + 7200) == doctest::Approx(0.339));  // 1.5 h billed
    CHECK(cents(cost.cost_until(t0 + 7200)) == 34);
    CHECK(cost.billed_seconds(t0, t0 + 7200) == doctest::Approx(5400));
    CHECK(cost.state() == azops::VmState::running);
    CHECK_FALSE(cost.billing_assumed());
    // What the page shows beside a stall: the cost of the last 20 minutes.
    CHECK(*cost.cost_between(t0 + 6000, t0 + 7200) == doctest::Approx(0.226 / 3));
    CHECK(*cost.cost_between(t0 + 3600, t0 + 5400) == doctest::Approx(0.0));
}

TEST_CASE("the original specification's 0.422 and 0.844 $/h come back by configuration") {
    azops::CostModel d4("Standard_D4ds_v5");
    d4.set_rate_override(0.422, "original specification");
    d4.set_state(azops::VmState::running, 0);
    CHECK(*d4.cost_until(40 * 60) == doctest::Approx(0.422 * 40 / 60));
    CHECK(d4.rate_source() == "original specification");

    azops::RateTable table = azops::RateTable::built_in();
    table.load_override_file(prices / "original_spec_rates.json");
    const auto q4 = table.quote("Standard_D4ds_v5");
    const auto q8 = table.quote("Standard_D8ds_v5", azops::OsType::windows_os, "westus2");
    CHECK(*q4.usd_per_hour == doctest::Approx(0.422));
    CHECK(*q8.usd_per_hour == doctest::Approx(0.844));  // no os/region in the file: any
    CHECK(q4.source == "override file " + (prices / "original_spec_rates.json").string());
    CHECK(*table.quote("Standard_D2ds_v5").usd_per_hour == doctest::Approx(0.113));  // untouched
}

TEST_CASE("an override scoped to an OS and a region applies only there") {
    azops::RateTable table = azops::RateTable::built_in();
    table.load_override_file(prices / "override_scoped.json");
    CHECK(*table.quote("Standard_D4ds_v5", azops::OsType::windows_os, "westeurope").usd_per_hour == doctest::Approx(0.5));
    CHECK(*table.quote("Standard_D4ds_v5", azops::OsType::linux_os, "westeurope").usd_per_hour == doctest::Approx(0.226));
    CHECK(*table.quote("Standard_D4ds_v5", azops::OsType::windows_os, "eastus").usd_per_hour == doctest::Approx(0.410));
}

TEST_CASE("override file errors are clear exceptions at setup, and add nothing") {
    azops::RateTable table;
    const std::string missing = load_error(table, prices / "no_such_file.json");
    CHECK(missing.find("no_such_file.json") != std::string::npos);
    CHECK(missing.find("does not exist") != std::string::npos);
    CHECK(load_error(table, prices).find("is a folder") != std::string::npos);
    const std::string truncated = load_error(table, prices / "override_truncated.json");
    CHECK(truncated.find("override_truncated.json") != std::string::npos);
    CHECK(truncated.find("not valid JSON") != std::string::npos);
    const std::string not_number = load_error(table, prices / "override_rate_not_number.json");
    CHECK(not_number.find("rates[1]") != std::string::npos);
    CHECK(not_number.find("usd_per_hour") != std::string::npos);
    CHECK(load_error(table, prices / "override_wrong_shape.json").find("expected {\"rates\"") != std::string::npos);
    // rates[0] of the bad file was valid but must not have been kept.
    CHECK(table.size() == 0);
    CHECK_FALSE(table.quote("Standard_D4ds_v5").usd_per_hour.has_value());

    const auto shape_error = [&](const char* text) {
        try {
            table.load_override_json(nlohmann::json::parse(text), "test");
        } catch (const std::runtime_error& e) {
            return std::string(e.what());
        }
        return std::string("no exception");
    };
    CHECK(shape_error(R"({"rates": [5]})").find("rates[0] is not an object") != std::string::npos);
    CHECK(shape_error(R"({"rates": [{"usd_per_hour": 1}]})").find("vm_size") != std::string::npos);
    CHECK(shape_error(R"({"rates": [{"vm_size": "D4ds_v5", "usd_per_hour": -1}]})").find("non-negative") !=
          std::string::npos);
    CHECK(shape_error(R"({"rates": [{"vm_size": "D4ds_v5", "usd_per_hour": 1, "os": "macos"}]})").find("\"os\"") !=
          std::string::npos);
    CHECK(shape_error(R"({"rates": [{"vm_size": "D4ds_v5", "usd_per_hour": 1, "region": 3}]})").find("\"region\"") !=
          std::string::npos);
    CHECK_THROWS_AS(table.add("Standard_D4ds_v5", std::nullopt, std::nullopt, -0.5, "manual"), std::invalid_argument);
}

TEST_CASE("saved Retail Prices API pages: the pay-as-you-go price is chosen among Spot, Low Priority, DevTest and reservations") {
    azops::RateTable table;
    const std::size_t taken = table.load_retail_prices({prices / "eastus-1.json", prices / "eastus-2.json"});
    // D4ds linux+windows, D4ads linux, D8ds linux+windows eastus, D8ds linux westus2.
    CHECK(taken == 6);
    const auto d4 = table.quote("Standard_D4ds_v5");
    REQUIRE(d4.usd_per_hour);
    CHECK(*d4.usd_per_hour == doctest::Approx(0.226));  // not Spot/Low Priority 0.0452, not the non-primary 0.231
    CHECK(d4.source == "Azure Retail Prices API (saved) eastus-1.json, effective 2023-04-01");
    CHECK(*table.quote("Standard_D4ds_v5", azops::OsType::windows_os).usd_per_hour ==
          doctest::Approx(0.41));  // not DevTest 0.226, not Spot 0.082
    CHECK(*table.quote("Standard_D4ads_v5").usd_per_hour == doctest::Approx(0.206));
    // Page 2: the newer of two effective dates; reservations (2374 for the year) never.
    const auto d8 = table.quote("Standard_D8ds_v5");
    CHECK(*d8.usd_per_hour == doctest::Approx(0.452));
    CHECK(d8.source.find("eastus-2.json") != std::string::npos);
    CHECK(*table.quote("Standard_D8ds_v5", azops::OsType::windows_os).usd_per_hour == doctest::Approx(0.82));
    CHECK(table.quote("Standard_D8ds_v5", azops::OsType::linux_os, "westus2").source.find("no westus2") ==
          std::string::npos);
    CHECK_FALSE(table.quote("Standard_D16ds_v5").usd_per_hour.has_value());

    azops::CostModel cost("Standard_D4ds_v5", azops::OsType::linux_os, "eastus", table);
    CHECK(cost.rate_source().find("Azure Retail Prices API (saved)") == 0);
}

TEST_CASE("price pages that are not price pages, or are missing, throw with the file's name") {
    azops::RateTable table;
    const auto error = [&](const std::filesystem::path& page) {
        try {
            table.load_retail_prices({page});
        } catch (const std::runtime_error& e) {
            return std::string(e.what());
        }
        return std::string("no exception");
    };
    CHECK(error(prices / "not_a_price_page.json").find("not_a_price_page.json is not an Azure Retail Prices API") !=
          std::string::npos);
    CHECK(error(prices / "missing-page.json").find("missing-page.json does not exist") != std::string::npos);
    CHECK(error(prices / "override_truncated.json").find("not valid JSON") != std::string::npos);
}

TEST_CASE("later sources win: saved prices over the built-in table, then a manual rate over both") {
    azops::RateTable table = azops::RateTable::built_in();
    table.load_retail_prices({prices / "eastus-1.json"});
    CHECK(table.quote("Standard_D4ds_v5").source.find("Azure Retail Prices API") == 0);
    CHECK(table.quote("Standard_D8ds_v5").source.find("built-in table") == 0);
    table.add("Standard_D8ds_v5", std::nullopt, std::nullopt, 0.5, "manual");
    CHECK(*table.quote("Standard_D8ds_v5").usd_per_hour == doctest::Approx(0.5));
    CHECK(table.quote("Standard_D8ds_v5").source == "manual");
}

TEST_CASE("unknown state is billed as running and flagged — a known state only is not flagged") {
    azops::CostModel cost("Standard_D8ds_v5");  // 0.452 $/h
    CHECK(cost.billing_assumed());               // nothing known yet
    cost.set_state(azops::VmState::unknown, 0);
    cost.set_state(azops::VmState::running, 600);
    CHECK(*cost.cost_until(3600) == doctest::Approx(0.452));
    CHECK(cost.billing_assumed());

    azops::CostModel known("Standard_D8ds_v5");
    known.set_state(azops::VmState::running, 0);
    CHECK_FALSE(known.billing_assumed());
    // A correction at the same instant replaces the state: nothing was assumed for any time.
    azops::CostModel corrected("Standard_D8ds_v5");
    corrected.set_state(azops::VmState::unknown, 0);
    corrected.set_state(azops::VmState::running, 0);
    CHECK_FALSE(corrected.billing_assumed());
}

TEST_CASE("projected cost: cost so far plus the ETA at the rate, while allocated") {
    azops::CostModel cost("Standard_D4ds_v5");
    cost.set_state(azops::VmState::running, 0);
    CHECK(*cost.projected_cost(1800, 1800.0) == doctest::Approx(0.226));
    CHECK(*cost.projected_cost(1800, 0.0) == doctest::Approx(0.113));
    CHECK(*cost.projected_cost(1800, -50.0) == doctest::Approx(0.113));  // a negative ETA adds nothing
    CHECK_FALSE(cost.projected_cost(1800, std::nullopt).has_value());
    cost.set_state(azops::VmState::deallocated, 1800);
    CHECK(*cost.projected_cost(3600, 1800.0) == doctest::Approx(0.113));  // deallocated: no more compute
    cost.set_state(azops::VmState::unknown, 3600);
    CHECK(*cost.projected_cost(3600, 3600.0) == doctest::Approx(0.113 + 0.226));  // assumed running
}

TEST_CASE("time going back never un-bills, repeated states change nothing, the cost is read at any past time") {
    azops::CostModel cost("Standard_D4ds_v5");
    cost.set_state(azops::VmState::running, 100);
    cost.set_state(azops::VmState::running, 200);
    cost.set_state(azops::VmState::deallocated, 3700);
    cost.set_state(azops::VmState::running, 50);  // earlier than the last change: taken as at 3700
    CHECK(*cost.cost_until(3700) == doctest::Approx(0.226));
    CHECK(*cost.cost_until(7300) == doctest::Approx(0.452));
    CHECK(*cost.cost_until(1900) == doctest::Approx(0.113));
    CHECK(*cost.cost_until(0) == doctest::Approx(0.0));
}

TEST_CASE("a rate found later applies to the whole timeline — a bad manual rate is unknown, not zero") {
    azops::CostModel cost;
    cost.set_state(azops::VmState::running, 0);
    CHECK_FALSE(cost.cost_until(3600).has_value());
    cost.set_rate(azops::RateTable::built_in().quote("Standard_D8ds_v5"));
    CHECK(*cost.cost_until(3600) == doctest::Approx(0.452));
    cost.set_rate_override(std::nan(""));
    CHECK_FALSE(cost.rate_known());
    CHECK_FALSE(cost.cost_until(3600).has_value());
}
