#include <doctest/doctest.h>

#include <cstring>

#include "rpc_test_util.h"

using namespace cfd;
using namespace cfd::rpc;

namespace {

// A message spread over several segments: a 4-word first segment forces the rest elsewhere.
std::string multi_segment_message(uint32_t* segments_out) {
    capnp::MallocMessageBuilder mb(4, capnp::AllocationStrategy::FIXED_SIZE);
    auto call = mb.initRoot<capnp::rpc::Message>().initCall();
    call.setQuestionId(7);
    call.setInterfaceId(kRegistrationInterfaceId);
    auto params = call.initParams();
    detail::encode(rpctest::sample_request(), params.getContent().initAs<detail::RegParams>());
    *segments_out = uint32_t(mb.getSegmentsForOutput().size());
    return rpctest::serialize(mb);
}

std::string header(uint32_t count_minus_one, std::vector<uint32_t> sizes) {
    std::string h(4, '\0');
    std::memcpy(h.data(), &count_minus_one, 4);
    for (uint32_t s : sizes) {
        h.append(reinterpret_cast<const char*>(&s), 4);
    }
    while (h.size() % 8 != 0) {
        h.push_back('\0');
    }
    return h;
}

}  // namespace

TEST_CASE("rpc frame: a multi-segment message split at every byte boundary") {
    uint32_t segments = 0;
    std::string bytes = multi_segment_message(&segments);
    REQUIRE(segments > 2);
    for (size_t cut = 0; cut <= bytes.size(); ++cut) {
        FrameReader reader;
        Frame frame;
        std::string_view a(bytes.data(), cut);
        std::string_view b(bytes.data() + cut, bytes.size() - cut);
        auto first = reader.read(a, frame);
        REQUIRE(first);
        CHECK(a.empty());
        CHECK(*first == (cut == bytes.size()));
        if (!*first) {
            auto second = reader.read(b, frame);
            REQUIRE(second);
            REQUIRE(*second);
        }
        CHECK(b.empty());
        REQUIRE(frame.segment_words.size() == segments);
        // The words round-trip: the call decodes to the same question id and request.
        detail::MessageIn in(frame);
        auto call = in.root().getCall();
        CHECK(call.getQuestionId() == 7);
        auto req = detail::decode(call.getParams().getContent().getAs<detail::RegParams>(), {});
        REQUIRE(req);
        CHECK(req->options.client.arch == "linux_amd64");
        CHECK(reader.buffered() == 0);
    }
}

TEST_CASE("rpc frame: fed one byte at a time") {
    uint32_t segments = 0;
    std::string bytes = multi_segment_message(&segments);
    FrameReader reader;
    Frame frame;
    size_t done = 0;
    for (size_t i = 0; i < bytes.size(); ++i) {
        std::string_view one(bytes.data() + i, 1);
        auto got = reader.read(one, frame);
        REQUIRE(got);
        if (*got) {
            ++done;
            CHECK(i == bytes.size() - 1);
        } else {
            CHECK(reader.buffered() == i + 1);
        }
    }
    CHECK(done == 1);
}

TEST_CASE("rpc frame: two messages in one chunk, then a partial third") {
    capnp::MallocMessageBuilder a;
    a.initRoot<capnp::rpc::Message>().initBootstrap().setQuestionId(1);
    capnp::MallocMessageBuilder b;
    b.initRoot<capnp::rpc::Message>().initFinish().setQuestionId(2);
    std::string third = rpctest::serialize(a);
    std::string bytes = rpctest::serialize(a) + rpctest::serialize(b) + third.substr(0, 5);
    std::string_view in(bytes);
    FrameReader reader;
    Frame frame;
    std::vector<uint32_t> ids;
    while (!in.empty()) {
        auto got = reader.read(in, frame);
        REQUIRE(got);
        if (*got) {
            detail::MessageIn m(frame);
            auto root = m.root();
            ids.push_back(root.which() == capnp::rpc::Message::BOOTSTRAP
                              ? root.getBootstrap().getQuestionId()
                              : root.getFinish().getQuestionId());
        }
    }
    CHECK(ids == std::vector<uint32_t>{1, 2});
    CHECK(reader.buffered() == 5);
}

TEST_CASE("rpc frame: too many segments is refused before any allocation") {
    FrameReader reader(FrameLimits{64, 1 << 20});
    Frame frame;
    std::string bytes = header(64, std::vector<uint32_t>(65, 1));  // 65 segments
    std::string_view in(bytes);
    auto got = reader.read(in, frame);
    REQUIRE(!got);
    CHECK(got.error().code == Errc::Protocol);
    CHECK(reader.failed());
    // The stream cannot be resynchronised: later bytes are refused too.
    std::string more = header(0, {1}) + std::string(8, '\0');
    std::string_view in2(more);
    CHECK(!reader.read(in2, frame));
}

TEST_CASE("rpc frame: a segment count of 2^32 does not wrap around") {
    FrameReader reader;
    Frame frame;
    std::string bytes = header(0xffffffffu, {1});
    std::string_view in(bytes);
    CHECK(!reader.read(in, frame));
}

TEST_CASE("rpc frame: oversized messages are refused from the header alone") {
    FrameReader reader(FrameLimits{64, 4096});
    Frame frame;
    std::string bytes = header(1, {256, 300});  // (256 + 300) * 8 bytes > 4096
    std::string_view in(bytes);
    auto got = reader.read(in, frame);
    REQUIRE(!got);
    CHECK(frame.words.empty());

    FrameReader huge;
    std::string bytes2 = header(0, {0xffffffffu});
    std::string_view in2(bytes2);
    CHECK(!huge.read(in2, frame));
}

TEST_CASE("rpc frame: a truncated message stays pending, never completes") {
    capnp::MallocMessageBuilder a;
    a.initRoot<capnp::rpc::Message>().initBootstrap().setQuestionId(1);
    std::string bytes = rpctest::serialize(a);
    bytes.pop_back();
    FrameReader reader;
    Frame frame;
    std::string_view in(bytes);
    auto got = reader.read(in, frame);
    REQUIRE(got);
    CHECK(!*got);
    CHECK(reader.buffered() == bytes.size());
}

TEST_CASE("rpc frame: an empty message frames fine and fails to decode cleanly") {
    FrameReader reader;
    Frame frame;
    std::string bytes = header(0, {0});
    std::string_view in(bytes);
    auto got = reader.read(in, frame);
    REQUIRE(got);
    REQUIRE(*got);
    CHECK(frame.words.empty());
    bool threw = false;
    try {
        detail::MessageIn m(frame);
        (void)m.root().which();
    } catch (const kj::Exception&) {
        threw = true;
    }
    CHECK(threw);
}
