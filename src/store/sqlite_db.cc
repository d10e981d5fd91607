#include "sqlite_db.h"

#include <unistd.h>

#include "cfd/core/log.h"

namespace cfd::store {

Statement& Statement::operator=(Statement&& o) noexcept {
    if (this != &o) {
        sqlite3_finalize(stmt_);
        stmt_ = o.stmt_;
        o.stmt_ = nullptr;
    }
    return *this;
}

Statement::~Statement() { sqlite3_finalize(stmt_); }

Statement& Statement::bind(int i, std::string_view text) {
    sqlite3_bind_text(stmt_, i, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
    return *this;
}

Statement& Statement::bind_blob(int i, std::string_view bytes) {
    sqlite3_bind_blob(stmt_, i, bytes.data(), static_cast<int>(bytes.size()), SQLITE_TRANSIENT);
    return *this;
}

Statement& Statement::bind(int i, int64_t v) {
    sqlite3_bind_int64(stmt_, i, v);
    return *this;
}

Result<bool> Statement::step() {
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) {
        return true;
    }
    if (rc == SQLITE_DONE) {
        return false;
    }
    if (rc == SQLITE_CONSTRAINT) {
        return Err{Errc::Exists, rc, "sqlite constraint"};
    }
    log::error("store query failed", {{"error", sqlite3_errmsg(sqlite3_db_handle(stmt_))}});
    return Err{rc == SQLITE_BUSY ? Errc::Busy : Errc::Syscall, 0, "sqlite step"};
}

Status Statement::run() {
    auto r = step();
    if (!r) {
        return r.error();
    }
    return {};
}

std::string Statement::text(int col) const {
    const auto* p = sqlite3_column_text(stmt_, col);
    return p ? std::string(reinterpret_cast<const char*>(p),
                           static_cast<size_t>(sqlite3_column_bytes(stmt_, col)))
             : std::string();
}

std::string Statement::blob(int col) const {
    const void* p = sqlite3_column_blob(stmt_, col);
    return p ? std::string(static_cast<const char*>(p),
                           static_cast<size_t>(sqlite3_column_bytes(stmt_, col)))
             : std::string();
}

int64_t Statement::integer(int col) const { return sqlite3_column_int64(stmt_, col); }

Result<Db> Db::open(const std::string& path) {
    sqlite3* db = nullptr;
    int rc = sqlite3_open_v2(path.c_str(), &db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                             nullptr);
    if (rc != SQLITE_OK) {
        log::error("cannot open store", {{"path", path}, {"error", sqlite3_errstr(rc)}});
        sqlite3_close(db);
        return Err{Errc::Syscall, 0, "sqlite open"};
    }
    // Several edge processes share the file: WAL lets readers run beside one writer, and the
    // busy timeout turns short lock waits into waiting instead of errors.
    sqlite3_busy_timeout(db, 5000);
    Db out(db);
    if (auto s = out.exec_at_start("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                                   " PRAGMA foreign_keys=ON;");
        !s) {
        return s.error();
    }
    return out;
}

Db::~Db() { sqlite3_close(db_); }

Result<Statement> Db::prepare(std::string_view sql) {
    sqlite3_stmt* s = nullptr;
    int rc = sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &s, nullptr);
    if (rc != SQLITE_OK) {
        log::error("store statement invalid", {{"error", sqlite3_errmsg(db_)}});
        return Err{Errc::Invalid, rc, "sqlite prepare"};
    }
    return Statement(s);
}

Status Db::exec(const char* sql) {
    return exec_quiet(sql, false);
}

Status Db::exec_quiet(const char* sql, bool quiet_if_busy) {
    char* err = nullptr;
    int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &err);
    if (rc != SQLITE_OK) {
        if (!(quiet_if_busy && rc == SQLITE_BUSY)) {
            log::error("store statement failed", {{"error", err ? err : sqlite3_errstr(rc)}});
        }
        sqlite3_free(err);
        return Err{rc == SQLITE_BUSY ? Errc::Busy : Errc::Syscall, 0, "sqlite exec"};
    }
    return {};
}

Status Db::exec_at_start(const char* sql, int seconds) {
    for (int i = 0, tries = seconds * 50; i < tries; i++) {
        auto s = exec_quiet(sql, true);
        if (s || s.error().code != Errc::Busy) {
            return s;
        }
        ::usleep(20000);
    }
    return exec(sql);  // the last try reports why
}

}  // namespace cfd::store
