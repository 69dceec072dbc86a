// SPDX-License-Identifier: MPL-2.0
// Throwaway TLS material for unit tests: a self-signed P-256 certificate and its key, made in
// memory with OpenSSL, so no test depends on files or the openssl command.
#pragma once

#include <catch2/catch.hpp>

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <memory>
#include <string>

namespace portunusd_test {

struct pem_pair {
    std::string certificate;
    std::string private_key;
};

inline std::string bio_text(BIO* bio)
{
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio, &data);
    return std::string(data, static_cast<std::size_t>(n));
}

/// A new key and a certificate for CN=`name`, valid for a day.
inline pem_pair self_signed(const char* name = "localhost")
{
    std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(EVP_EC_gen("P-256"), EVP_PKEY_free);
    REQUIRE(key);
    std::unique_ptr<X509, decltype(&X509_free)> cert(X509_new(), X509_free);
    REQUIRE(cert);
    X509_set_version(cert.get(), 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert.get()), 0);
    X509_gmtime_adj(X509_getm_notAfter(cert.get()), 24 * 3600);
    X509_set_pubkey(cert.get(), key.get());
    X509_NAME* subject = X509_get_subject_name(cert.get());
    X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(name), -1, -1, 0);
    X509_set_issuer_name(cert.get(), subject);
    REQUIRE(X509_sign(cert.get(), key.get(), EVP_sha256()) > 0);

    pem_pair out;
    std::unique_ptr<BIO, decltype(&BIO_free)> c(BIO_new(BIO_s_mem()), BIO_free);
    REQUIRE(PEM_write_bio_X509(c.get(), cert.get()) == 1);
    out.certificate = bio_text(c.get());
    std::unique_ptr<BIO, decltype(&BIO_free)> k(BIO_new(BIO_s_mem()), BIO_free);
    REQUIRE(PEM_write_bio_PrivateKey(k.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) == 1);
    out.private_key = bio_text(k.get());
    return out;
}

} // namespace portunusd_test
