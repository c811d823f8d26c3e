//! Tower layers that put meshwork on the request path of an HTTP client.
