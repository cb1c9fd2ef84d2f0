#pragma once
// The socket and stream types of one connection. Each connection runs on a
// strand of its own (its handlers never run concurrently); the strand is a
// concrete type, not any_io_executor, because the type-erased executor
// allocates when it is copied or posted to, which the relay path does for
// every message.
#include <boost/asio/basic_waitable_timer.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <chrono>

namespace rendezvous::server {

using connection_strand = boost::asio::strand<boost::asio::io_context::executor_type>;
using connection_socket = boost::asio::ip::tcp::socket::rebind_executor<connection_strand>::other;
using plain_stream = boost::beast::basic_stream<boost::asio::ip::tcp, connection_strand>;
using tls_stream = boost::beast::ssl_stream<plain_stream>;
using connection_timer =
    boost::asio::basic_waitable_timer<std::chrono::steady_clock,
                                      boost::asio::wait_traits<std::chrono::steady_clock>, connection_strand>;

}  // namespace rendezvous::server
