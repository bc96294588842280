// azops/cost.hpp — what the VM costs: hourly rates and billing by VM state over time.
//
// Owns: `VmState` (Azure power states) with its words, `RateTable` (a built-in eastus table, JSON
// override files, saved Azure Retail Prices API pages, manual rates) and `CostModel` (compute cost
// accrued so far, between two times and projected to the end of the task, under DESIGN.md's
// billing rule). Times are seconds on any monotonic clock the caller chooses.
// Thread-safety: plain values; a const object may be read from several threads, a changing one
// needs the caller's lock (the Tracker's).
// Errors: loading an override file or a saved price page throws std::runtime_error with a message
// naming the file and the problem (setup time, before the task runs); `RateTable::add` throws
// std::invalid_argument for a negative rate. Nothing else throws except std::bad_alloc. An unknown
// size is never billed at $0: its rate is std::nullopt and `rate_message()` says how to give one.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <tuple>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include <azops/detail/text.hpp>

namespace azops {

// Azure's power states (PowerState/<word> in `az vm get-instance-view`).
// `absent`: Azure says the VM does not exist (not yet created, a create that failed, deleted).
enum class VmState { running, starting, stopping, stopped, deallocating, deallocated, absent, unknown };

inline std::string_view to_string(VmState state) noexcept {
    switch (state) {
        case VmState::running: return "running";
        case VmState::starting: return "starting";
        case VmState::stopping: return "stopping";
        case VmState::stopped: return "stopped";
        case VmState::deallocating: return "deallocating";
        case VmState::deallocated: return "deallocated";
        case VmState::absent: return "absent";
        case VmState::unknown: break;
    }
    return "unknown";
}

namespace detail::cost {

using text::contains;
using text::starts_with;

inline std::string lower_trimmed(std::string_view s) { return text::lower_ascii(text::trim_space(s)); }

}  // namespace detail::cost

// Reads the state in any of the forms `az` prints: "running", "PowerState/running", "VM running"
// (`az vm show -d`), "Stopped (deallocated)" (the portal). Anything else is `unknown`.
inline VmState parse_vm_state(std::string_view text) {
    std::string word = detail::cost::lower_trimmed(text);
    if (detail::cost::starts_with(word, "powerstate/")) word.erase(0, 11);
    if (detail::cost::starts_with(word, "vm ")) word.erase(0, 3);
    if (detail::cost::contains(word, "(deallocated)")) return VmState::deallocated;
    if (detail::cost::contains(word, "(allocated)")) return VmState::stopped;
    static constexpr std::array all{VmState::running, VmState::starting,     VmState::stopping,
                                    VmState::stopped, VmState::deallocating, VmState::deallocated,
                                    VmState::absent};
    for (VmState s : all) {
        if (word == to_string(s)) return s;
    }
    return VmState::unknown;
}

// DESIGN.md, "Billing rule": compute is charged while the VM is allocated. An unknown state is
// charged too: the page then says the cost assumes the VM runs. A VM that does not exist costs nothing.
inline bool is_billed(VmState state) noexcept {
    return state != VmState::deallocating && state != VmState::deallocated && state != VmState::absent;
}

// `linux` is a predefined macro in GNU dialects (-std=gnu++17, CMake's default), so it cannot be
// an enumerator name.
enum class OsType { linux_os, windows_os };

inline std::string_view to_string(OsType os) noexcept { return os == OsType::windows_os ? "windows" : "linux"; }

inline std::optional<OsType> parse_os_type(std::string_view text) {
    const std::string word = detail::cost::lower_trimmed(text);
    if (word == "linux") return OsType::linux_os;
    if (word == "windows") return OsType::windows_os;
    return std::nullopt;
}

inline constexpr std::string_view default_region = "eastus";

// Saves the pay-as-you-go prices of one size in eastus as one page of the Azure Retail Prices API
// (no account needed); load it with RateTable::load_retail_prices:
//
//   curl -fsS -o prices/eastus-Standard_D4ds_v5.json "https://prices.azure.com/api/retail/prices?\$filter=serviceName%20eq%20'Virtual%20Machines'%20and%20armRegionName%20eq%20'eastus'%20and%20armSkuName%20eq%20'Standard_D4ds_v5'"
//
// A wider filter (a whole region) answers in pages of 100 items; save each page to its own file by
// following NextPageLink:
//
//   u="https://prices.azure.com/api/retail/prices?\$filter=serviceName%20eq%20'Virtual%20Machines'%20and%20armRegionName%20eq%20'eastus'%20and%20priceType%20eq%20'Consumption'"; n=1; while [ -n "$u" ]; do curl -fsS -o "prices/eastus-$n.json" "$u" || break; u=$(grep -o '"NextPageLink": *"[^"]*"' "prices/eastus-$n.json" | cut -d'"' -f4 | sed 's/ /%20/g'); n=$((n+1)); done

// Where a rate came from, and whether there is one at all.
struct RateQuote {
    std::string vm_size;
    OsType os = OsType::linux_os;
    std::string region;
    std::optional<double> usd_per_hour;  // nullopt: the rate is unknown, never guessed as 0
    std::string source;                  // e.g. "built-in table eastus linux 2026-11"
    std::string message;                 // when unknown: what is missing and how to provide it
};

namespace detail::cost {

// "Standard_D4ds_v5", "standard_d4ds_v5" and "D4ds_v5" all name one size.
inline std::string size_key(std::string_view size) {
    std::string key = lower_trimmed(size);
    if (!key.empty() && !starts_with(key, "standard_") && !starts_with(key, "basic_")) key = "standard_" + key;
    return key;
}

inline std::string region_key(std::string_view region) {
    std::string key = lower_trimmed(region);
    key.erase(std::remove(key.begin(), key.end(), ' '), key.end());
    return key;
}

struct BuiltInRate {
    std::string_view size;
    double linux_usd;
    double windows_usd;
};

// Pay-as-you-go list prices, USD per hour, region eastus, as public Azure price tables
// (azure.microsoft.com pricing pages, Retail Prices API listings) give them; table written
// 2026-11-29, without a live check against the API. Standard_D4ds_v5 0.226 and Standard_D8ds_v5
// 0.452 (Linux) agree across two independent tables; public tables disagree elsewhere (the original
// specification used 0.422 $/h for D4ds_v5; one table gives D4ads_v5 0.201), so RateQuote::source
// always says which table a figure came from, and saved API pages or an override file replace it.
// Windows prices add the Windows Server licence, 0.046 $ per vCPU-hour, to the Linux price.
inline constexpr std::string_view built_in_date = "2026-11";
inline constexpr std::array<BuiltInRate, 15> built_in_eastus{{
    {"Standard_D2ds_v5", 0.113, 0.205},  {"Standard_D4ds_v5", 0.226, 0.410},
    {"Standard_D8ds_v5", 0.452, 0.820},  {"Standard_D16ds_v5", 0.904, 1.640},
    {"Standard_D32ds_v5", 1.808, 3.280}, {"Standard_D2ads_v5", 0.103, 0.195},
    {"Standard_D4ads_v5", 0.206, 0.390}, {"Standard_D8ads_v5", 0.412, 0.780},
    {"Standard_D16ads_v5", 0.824, 1.560}, {"Standard_D32ads_v5", 1.648, 3.120},
    {"Standard_D2s_v3", 0.096, 0.188},   {"Standard_D4s_v3", 0.192, 0.376},
    {"Standard_D8s_v3", 0.384, 0.752},   {"Standard_D16s_v3", 0.768, 1.504},
    {"Standard_D32s_v3", 1.536, 3.008},
}};
static_assert(!built_in_eastus.back().size.empty(), "built_in_eastus: its size names more rows than it has");

inline std::string read_text_file(const std::filesystem::path& path, std::string_view what) {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) {
        throw std::runtime_error(std::string(what) + " " + path.string() + " does not exist");
    }
    if (std::filesystem::is_directory(path, ec)) {
        throw std::runtime_error(std::string(what) + " " + path.string() + " is a folder, not a file");
    }
    std::ifstream in(path, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    if (!in || in.bad()) throw std::runtime_error("cannot read " + std::string(what) + " " + path.string());
    return text.str();
}

inline nlohmann::json parse_json_file(const std::filesystem::path& path, std::string_view what) {
    const std::string text = read_text_file(path, what);
    try {
        return nlohmann::json::parse(text);
    } catch (const nlohmann::json::parse_error& e) {
        throw std::runtime_error(std::string(what) + " " + path.string() + " is not valid JSON: " + e.what());
    }
}

inline const std::string* string_field(const nlohmann::json& object, const char* key) {
    const auto it = object.find(key);
    return it != object.end() && it->is_string() ? it->get_ptr<const std::string*>() : nullptr;
}

inline std::optional<double> number_field(const nlohmann::json& object, const char* key) {
    const auto it = object.find(key);
    if (it == object.end() || !it->is_number()) return std::nullopt;
    const double value = it->get<double>();
    return std::isfinite(value) ? std::optional<double>(value) : std::nullopt;
}

}  // namespace detail::cost

// Hourly rates by (size, OS, region). Later additions win over earlier ones, so an override file
// loaded after the built-in table replaces its figures.
class RateTable {
public:
    RateTable() = default;

    // The built-in eastus table (see detail::cost::built_in_eastus for the source and date).
    static RateTable built_in() {
        RateTable table;
        const std::string base = "built-in table " + std::string(default_region) + " ";
        for (const auto& r : detail::cost::built_in_eastus) {
            table.add(r.size, OsType::linux_os, default_region, r.linux_usd,
                      base + "linux " + std::string(detail::cost::built_in_date));
            table.add(r.size, OsType::windows_os, default_region, r.windows_usd,
                      base + "windows " + std::string(detail::cost::built_in_date));
        }
        return table;
    }

    // One rate. An absent `os` or `region` matches every OS or region. Throws
    // std::invalid_argument for a negative or non-finite rate.
    void add(std::string_view vm_size, std::optional<OsType> os, std::optional<std::string_view> region,
             double usd_per_hour, std::string source) {
        if (!std::isfinite(usd_per_hour) || usd_per_hour < 0) {
            throw std::invalid_argument("hourly rate for " + std::string(vm_size) + " must be a non-negative number");
        }
        Entry e;
        e.size = detail::cost::size_key(vm_size);
        e.os = os;
        if (region) e.region = detail::cost::region_key(*region);
        e.usd_per_hour = usd_per_hour;
        e.source = std::move(source);
        entries_.push_back(std::move(e));
    }

    // An override file:
    //   {"rates": [{"vm_size": "Standard_D4ds_v5", "usd_per_hour": 0.422},
    //              {"vm_size": "Standard_D8ds_v5", "usd_per_hour": 0.844, "os": "linux", "region": "eastus"}]}
    // `os` and `region` are optional (absent: every OS / region). Throws std::runtime_error naming
    // the file and the entry when the file is missing, is not JSON or has the wrong shape; then
    // nothing of the file has been added.
    void load_override_file(const std::filesystem::path& path) {
        load_override_json(detail::cost::parse_json_file(path, "rate override file"), "override file " + path.string());
    }

    // The same from a parsed document; `origin` names it in sources and messages.
    void load_override_json(const nlohmann::json& doc, const std::string& origin) {
        const auto fail = [&](const std::string& why) { throw std::runtime_error("rate " + origin + ": " + why); };
        if (!doc.is_object() || !doc.contains("rates") || !doc["rates"].is_array()) {
            fail(R"(expected {"rates": [{"vm_size": "Standard_D4ds_v5", "usd_per_hour": 0.226}, ...]})");
        }
        RateTable parsed;
        std::size_t index = 0;
        for (const auto& item : doc["rates"]) {
            const std::string where = "rates[" + std::to_string(index++) + "]";
            if (!item.is_object()) fail(where + " is not an object");
            const std::string* size = detail::cost::string_field(item, "vm_size");
            if (size == nullptr || size->empty()) fail(where + ": \"vm_size\" must be a non-empty string");
            const auto usd = detail::cost::number_field(item, "usd_per_hour");
            if (!usd || *usd < 0) fail(where + ": \"usd_per_hour\" must be a non-negative number");
            std::optional<OsType> os;
            if (item.contains("os")) {
                const std::string* word = detail::cost::string_field(item, "os");
                if (word != nullptr) os = parse_os_type(*word);
                if (!os) fail(where + R"(: "os" must be "linux" or "windows")");
            }
            std::optional<std::string_view> region;
            if (item.contains("region")) {
                const std::string* name = detail::cost::string_field(item, "region");
                if (name == nullptr || name->empty()) fail(where + ": \"region\" must be a non-empty string");
                region = *name;
            }
            parsed.add(*size, os, region, *usd, origin);
        }
        append(parsed);
    }

    // Saved pages of the Azure Retail Prices API (`{"Items": [...], "NextPageLink": ...}`), one file
    // per page. Of each size, region and OS it keeps the pay-as-you-go price: type "Consumption"
    // (not "DevTestConsumption" or "Reservation", whose retailPrice is the whole term), per
    // "1 Hour", not Spot or Low Priority, preferring the primary meter region and then the latest
    // effectiveStartDate. Windows is told by "Windows" in productName. Returns how many rates it
    // took. Throws std::runtime_error when a file is missing, not JSON, or has no Items array.
    std::size_t load_retail_prices(const std::vector<std::filesystem::path>& pages) {
        std::map<std::tuple<std::string, OsType, std::string>, Candidate> best;
        for (const auto& page : pages) {
            const nlohmann::json doc = detail::cost::parse_json_file(page, "price page");
            collect_retail_prices(doc, page.filename().string(), best);
        }
        RateTable parsed;
        for (const auto& [key, c] : best) {
            std::string source = "Azure Retail Prices API (saved) " + c.file;
            if (!c.effective.empty()) source += ", effective " + c.effective.substr(0, 10);
            parsed.add(std::get<0>(key), std::get<1>(key), std::get<2>(key), c.usd, std::move(source));
        }
        append(parsed);
        return best.size();
    }

    // The rate for a VM. Where the table has the size but not the region, the default region's
    // price is used and the source says so (Dv5 prices are the same in most US regions, not in all).
    RateQuote quote(std::string_view vm_size, OsType os = OsType::linux_os,
                    std::string_view region = default_region) const {
        RateQuote q;
        q.vm_size = std::string(vm_size);
        q.os = os;
        q.region = detail::cost::region_key(region);
        const std::string size = detail::cost::size_key(vm_size);
        if (const Entry* e = find(size, os, q.region)) {
            q.usd_per_hour = e->usd_per_hour;
            q.source = e->source;
            return q;
        }
        if (const Entry* e = find(size, os, std::string(default_region))) {
            q.usd_per_hour = e->usd_per_hour;
            q.source = e->source + " (no " + q.region + " price; " + std::string(default_region) + "'s used)";
            return q;
        }
        q.source = "unknown";
        q.message = "no hourly rate for " + (vm_size.empty() ? std::string("an unnamed VM size") : q.vm_size) +
                    " (" + std::string(to_string(os)) + ", " + q.region +
                    R"(): give one in a rate override file ({"rates": [{"vm_size": ")" + q.vm_size +
                    R"(", "usd_per_hour": ...}]}) or load saved Azure Retail Prices API pages)";
        return q;
    }

    std::size_t size() const noexcept { return entries_.size(); }

private:
    struct Entry {
        std::string size;
        std::optional<OsType> os;
        std::optional<std::string> region;
        double usd_per_hour = 0;
        std::string source;
    };

    struct Candidate {
        double usd = 0;
        bool primary = false;
        std::string effective;
        std::string file;
    };

    const Entry* find(const std::string& size, OsType os, const std::string& region) const {
        for (auto it = entries_.rbegin(); it != entries_.rend(); ++it) {
            if (it->size == size && (!it->os || *it->os == os) && (!it->region || *it->region == region)) return &*it;
        }
        return nullptr;
    }

    void append(const RateTable& other) {
        entries_.insert(entries_.end(), other.entries_.begin(), other.entries_.end());
    }

    static void collect_retail_prices(const nlohmann::json& doc, const std::string& file,
                                      std::map<std::tuple<std::string, OsType, std::string>, Candidate>& best) {
        if (!doc.is_object() || !doc.contains("Items") || !doc["Items"].is_array()) {
            throw std::runtime_error("price page " + file +
                                     " is not an Azure Retail Prices API response (no \"Items\" array)");
        }
        for (const auto& item : doc["Items"]) {
            if (!item.is_object()) continue;
            const auto text = [&](const char* key) {
                const std::string* s = detail::cost::string_field(item, key);
                return s != nullptr ? *s : std::string();
            };
            const std::string service = text("serviceName");
            if (!service.empty() && service != "Virtual Machines") continue;
            if (text("type") != "Consumption" || text("unitOfMeasure") != "1 Hour") continue;
            const std::string product = text("productName");
            const std::string meter = text("meterName") + " " + text("skuName") + " " + product;
            if (detail::cost::contains(meter, "Spot") || detail::cost::contains(meter, "Low Priority")) continue;
            const std::string sku = text("armSkuName");
            const std::string region = text("armRegionName");
            const auto usd = detail::cost::number_field(item, "retailPrice");
            if (sku.empty() || region.empty() || !usd || *usd <= 0) continue;
            Candidate c;
            c.usd = *usd;
            const auto primary = item.find("isPrimaryMeterRegion");
            c.primary = primary == item.end() || !primary->is_boolean() || primary->get<bool>();
            c.effective = text("effectiveStartDate");
            c.file = file;
            const OsType os = detail::cost::contains(product, "Windows") ? OsType::windows_os : OsType::linux_os;
            const auto key = std::make_tuple(detail::cost::size_key(sku), os, detail::cost::region_key(region));
            const auto found = best.find(key);
            if (found == best.end() || std::make_pair(c.primary, c.effective) >
                                           std::make_pair(found->second.primary, found->second.effective)) {
                best[key] = std::move(c);
            }
        }
    }

    std::vector<Entry> entries_;
};

// Compute cost of one VM over the task. The state timeline starts at the first `set_state`: call
// `set_state(VmState::unknown, start)` when the task starts and the state is not known yet.
class CostModel {
public:
    // No VM yet: the rate is unknown until `set_rate`.
    CostModel() { rate_.source = "unknown"; rate_.message = "no VM size given yet"; }

    explicit CostModel(RateQuote rate) : rate_(std::move(rate)) {}

    explicit CostModel(std::string_view vm_size, OsType os = OsType::linux_os,
                       std::string_view region = default_region, const RateTable& rates = RateTable::built_in())
        : rate_(rates.quote(vm_size, os, region)) {}

    // A rate found later (the size became known) applies to the whole timeline: the VM's price did
    // not change, only our knowledge of it.
    void set_rate(RateQuote rate) { rate_ = std::move(rate); }

    // A rate given by hand, e.g. the original specification's 0.422 $/h for Standard_D4ds_v5.
    void set_rate_override(double usd_per_hour, std::string source = "manual") {
        rate_.usd_per_hour = std::isfinite(usd_per_hour) && usd_per_hour >= 0 ? std::optional<double>(usd_per_hour)
                                                                                : std::nullopt;
        rate_.source = rate_.usd_per_hour ? std::move(source) : "unknown";
        rate_.message = rate_.usd_per_hour ? "" : "the manual rate was not a non-negative number";
    }

    const RateQuote& rate() const noexcept { return rate_; }
    std::optional<double> hourly_rate() const noexcept { return rate_.usd_per_hour; }
    bool rate_known() const noexcept { return rate_.usd_per_hour.has_value(); }
    const std::string& rate_source() const noexcept { return rate_.source; }
    const std::string& rate_message() const noexcept { return rate_.message; }

    // The VM is in `state` from time `t` on. Times earlier than the last change are taken as the
    // last change (a monotonic clock never goes back; a confused caller must not un-bill time).
    void set_state(VmState state, double t) {
        if (!changes_.empty()) {
            t = std::max(t, changes_.back().t);
            if (changes_.back().state == state) return;
            if (changes_.back().t == t) {
                changes_.back().state = state;
                merge_tail();
                return;
            }
        }
        changes_.push_back({t, state});
    }

    VmState state() const noexcept { return changes_.empty() ? VmState::unknown : changes_.back().state; }

    // True when some billed time so far (up to the last change, or now) was billed only because
    // the state was unknown: the page then says the cost assumes the VM was running.
    bool billing_assumed() const noexcept {
        return changes_.empty() || std::any_of(changes_.begin(), changes_.end(),
                                               [](const Change& c) { return c.state == VmState::unknown; });
    }

    // Seconds billed between `from` and `to` (clamped to the timeline).
    double billed_seconds(double from, double to) const noexcept {
        double total = 0;
        for (std::size_t i = 0; i < changes_.size(); ++i) {
            if (!is_billed(changes_[i].state)) continue;
            const double begin = std::max(from, changes_[i].t);
            const double end = std::min(to, i + 1 < changes_.size() ? changes_[i + 1].t : to);
            if (end > begin) total += end - begin;
        }
        return total;
    }

    std::optional<double> cost_between(double from, double to) const noexcept {
        if (!rate_.usd_per_hour) return std::nullopt;
        return billed_seconds(from, to) * *rate_.usd_per_hour / 3600.0;
    }

    // Cost accrued from the first state change until `t`.
    std::optional<double> cost_until(double t) const noexcept {
        if (changes_.empty()) return rate_.usd_per_hour ? std::optional<double>(0.0) : std::nullopt;
        return cost_between(changes_.front().t, t);
    }

    // Cost so far plus the remaining time at the rate, if the VM is billed now (a deallocated VM
    // costs nothing more while it stays so). nullopt without a rate or without an ETA.
    std::optional<double> projected_cost(double now, std::optional<double> eta_seconds) const noexcept {
        const auto so_far = cost_until(now);
        if (!so_far || !eta_seconds) return std::nullopt;
        const double ahead = is_billed(state()) ? std::max(0.0, *eta_seconds) : 0.0;
        return *so_far + ahead * *rate_.usd_per_hour / 3600.0;
    }

private:
    struct Change {
        double t;
        VmState state;
    };

    // After an in-place correction the last change may now repeat the one before it.
    void merge_tail() {
        if (changes_.size() >= 2 && changes_[changes_.size() - 2].state == changes_.back().state) changes_.pop_back();
    }

    RateQuote rate_;
    std::vector<Change> changes_;
};

}  // namespace azops
