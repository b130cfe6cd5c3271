# The benchmark's load balancer (its origin listener); the rest is deploy/varnish/sealcast.vcl.
backend lb {
    .host = "127.0.0.1";
    .port = "@ORIGIN_PORT@";
    .connect_timeout = 1s;
    .first_byte_timeout = 15s;
    .between_bytes_timeout = 10s;
}
sub vcl_init {
    new origin = directors.round_robin();
    origin.add_backend(lb);
}
# Who may BAN: nobody but this machine.
acl purgers {
    "127.0.0.1";
}
