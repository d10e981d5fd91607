// A thin RAII layer over sqlite3: a connection and prepared statements with typed binds.
#pragma once

#include <sqlite3.h>

#include <string>
#include <string_view>

#include "cfd/core/result.h"

namespace cfd::store {

class Statement {
public:
    Statement() = default;
    explicit Statement(sqlite3_stmt* s) : stmt_(s) {}
    Statement(Statement&& o) noexcept : stmt_(o.stmt_) { o.stmt_ = nullptr; }
    Statement& operator=(Statement&& o) noexcept;
    Statement(const Statement&) = delete;
    ~Statement();

    Statement& bind(int i, std::string_view text);
    Statement& bind_blob(int i, std::string_view bytes);
    Statement& bind(int i, int64_t v);
    // SQLITE_ROW -> true, SQLITE_DONE -> false; errors in `status`.
    Result<bool> step();
    Status run();  // step to completion, expecting no rows

    std::string text(int col) const;
    std::string blob(int col) const;
    int64_t integer(int col) const;

private:
    sqlite3_stmt* stmt_ = nullptr;
};

class Db {
public:
    static Result<Db> open(const std::string& path);
    Db(Db&& o) noexcept : db_(o.db_) { o.db_ = nullptr; }
    Db(const Db&) = delete;
    ~Db();

    Result<Statement> prepare(std::string_view sql);
    Status exec(const char* sql);
    // At start-up only (it sleeps): exec(), tried again for up to `seconds` while another
    // process holds the file's lock. SQLite skips the busy handler for some locks (turning a new
    // file to WAL, a lock upgrade that could deadlock), so two edges starting at once on a new
    // store can meet SQLITE_BUSY at once.
    Status exec_at_start(const char* sql, int seconds = 10);
    int changes() const { return sqlite3_changes(db_); }
    const char* last_error() const { return sqlite3_errmsg(db_); }

private:
    explicit Db(sqlite3* db) : db_(db) {}
    Status exec_quiet(const char* sql, bool quiet_if_busy);
    sqlite3* db_ = nullptr;
};

}  // namespace cfd::store
