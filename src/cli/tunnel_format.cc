#include "cli/tunnel_format.h"

#include <algorithm>
#include <map>

namespace cfd::cli {

std::string format_table(const std::vector<std::vector<std::string>>& rows,
                         const std::vector<size_t>& min_widths) {
    std::vector<size_t> widths = min_widths;
    for (const auto& row : rows) {
        if (row.size() > widths.size()) {
            widths.resize(row.size(), 0);
        }
        for (size_t i = 0; i < row.size(); ++i) {
            widths[i] = std::max(widths[i], row[i].size());
        }
    }
    std::string out;
    for (const auto& row : rows) {
        std::string line;
        for (size_t i = 0; i < row.size(); ++i) {
            line += row[i];
            if (i + 1 < row.size()) {
                line.append(widths[i] - row[i].size() + 1, ' ');
            }
        }
        out += line + "\n";
    }
    return out;
}

std::string long_time(std::string_view t) {
    // YYYY-MM-DDTHH:MM:SS[.ffffff]Z
    if (t.size() < 20 || t[10] != 'T') {
        return std::string(t);
    }
    std::string out(t.substr(0, 10));
    out += ' ';
    std::string_view rest = t.substr(11);
    if (rest.ends_with("Z")) {
        rest.remove_suffix(1);
    }
    out += rest;
    out += " +0000 UTC";
    return out;
}

std::string short_time(std::string_view t) {
    if (t.size() < 19) {
        return std::string(t);
    }
    return std::string(t.substr(0, 19)) + "Z";
}

std::string edge_summary(const json::Value& edges) {
    std::map<std::string, long> sorted;
    for (const auto& [loc, n] : edges.members()) {
        sorted[loc] += static_cast<long>(n.as_number());
    }
    std::string out;
    for (const auto& [loc, n] : sorted) {
        if (!out.empty()) {
            out += ", ";
        }
        out += std::to_string(n) + "x" + loc;
    }
    return out;
}

namespace {
// VERSION is sized for two-digit months and patch numbers ("2026.11.10"), so that the table
// does not shift between releases.
const std::vector<size_t> kInfoMinWidths{0, 0, 0, 10, 0, 0};
}  // namespace

std::string format_info(const json::Value& t) {
    std::string out;
    out += "NAME:     " + t.get_string("name") + "\n";
    out += "ID:       " + t.get_string("id") + "\n";
    out += "CREATED:  " + long_time(t.get_string("created_at")) + "\n";
    const json::Value* connectors = t.get("connectors");
    if (connectors == nullptr || connectors->items().empty()) {
        out += "\nThis tunnel has no active connectors.\n";
        return out;
    }
    std::vector<std::vector<std::string>> rows{
        {"CONNECTOR ID", "CREATED", "ARCHITECTURE", "VERSION", "ORIGIN IP", "EDGE"}};
    for (const json::Value& c : connectors->items()) {
        const json::Value* edges = c.get("edges");
        rows.push_back({c.get_string("id"), short_time(c.get_string("created_at")),
                        c.get_string("arch"), c.get_string("version"), c.get_string("origin_ip"),
                        edges ? edge_summary(*edges) : ""});
    }
    out += "\n" + format_table(rows, kInfoMinWidths);
    return out;
}

std::string format_list(const std::vector<json::Value>& tunnels) {
    if (tunnels.empty()) {
        return "No tunnels were found for the given filter flags. You can use 'cfdtunnel tunnel "
               "create' to create a tunnel.\n";
    }
    std::vector<std::vector<std::string>> rows{{"ID", "NAME", "CREATED", "CONNECTIONS"}};
    for (const json::Value& t : tunnels) {
        json::Value edges = json::Value::object();
        if (const json::Value* cs = t.get("connectors")) {
            for (const json::Value& c : cs->items()) {
                if (const json::Value* e = c.get("edges")) {
                    for (const auto& [loc, n] : e->members()) {
                        const json::Value* cur = edges.get(loc);
                        double sum = (cur ? cur->as_number() : 0) + n.as_number();
                        edges.set(loc, json::Value::number(sum));
                    }
                }
            }
        }
        rows.push_back({t.get_string("id"), t.get_string("name"),
                        short_time(t.get_string("created_at")), edge_summary(edges)});
    }
    return "You can obtain more detailed information for each tunnel with `cfdtunnel tunnel "
           "info <name/uuid>`\n" +
           format_table(rows);
}

}  // namespace cfd::cli
