#ifndef DV_CCURL_H
#define DV_CCURL_H
#include <curl/curl.h>

// curl_easy_setopt and curl_easy_getinfo are variadic, which Swift cannot call: one typed wrapper
// per argument type. The callbacks themselves are Swift @convention(c) functions that receive
// their context through the matching *DATA option.

CURLcode dv_curl_setopt_long(CURL *handle, CURLoption option, long value);
CURLcode dv_curl_setopt_off(CURL *handle, CURLoption option, curl_off_t value);
CURLcode dv_curl_setopt_string(CURL *handle, CURLoption option, const char *value);
CURLcode dv_curl_setopt_pointer(CURL *handle, CURLoption option, void *value);
CURLcode dv_curl_setopt_slist(CURL *handle, CURLoption option, struct curl_slist *value);
CURLcode dv_curl_setopt_write_function(CURL *handle, CURLoption option, curl_write_callback function);
CURLcode dv_curl_setopt_read_function(CURL *handle, curl_read_callback function);
CURLcode dv_curl_setopt_seek_function(CURL *handle, curl_seek_callback function);
CURLcode dv_curl_setopt_xferinfo_function(CURL *handle, curl_xferinfo_callback function);

CURLcode dv_curl_getinfo_long(CURL *handle, CURLINFO info, long *value);
CURLcode dv_curl_getinfo_off(CURL *handle, CURLINFO info, curl_off_t *value);
CURLcode dv_curl_getinfo_string(CURL *handle, CURLINFO info, const char **value);

#endif
