#!/usr/bin/env python3
"""Drive the vendors' official Python SDKs against a running `apiconform serve`.

Usage: check_sdks.py HOST:PORT

Each check prints `ok NAME` or `FAIL NAME: WHY`; the last line is `N passed, M failed`, and the
exit status is non-zero when any check failed. Nothing in the SDKs is changed but the endpoint and
the protocol (plain HTTP on loopback). Before each check the emulator's world is put back to its
default through the emulator's own admin endpoint, so the checks do not depend on each other.
"""

import json
import os
import sys
import traceback
import urllib.request

ADDR = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:9000"
HOST, PORT = ADDR.rsplit(":", 1)
PORT = int(PORT)

# The documentation example credentials the emulator accepts by default.
TENCENT_ID = "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE"
TENCENT_KEY = "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE"
ALIBABA_ID = "testid"
ALIBABA_SECRET = "testsecret"
TENCENT_REGION = "ap-guangzhou"
CVM_ASSOCIATE = "tencent-cvm/AssociateInstancesKeyPairs"
V2_UNBIND = "tencent-cvm/UnBindInstanceKey"
ALIBABA_REGION = "cn-hangzhou"

RESULTS = []
# In proxy mode (run.sh --proxy): per check, the client-side findings the proxy must report for
# the requests it sends on purpose (a malformed id, a missing parameter, a wrong secret), as
# (API, rule) pairs; written to $APICONFORM_PROXY_EXPECT at the end.
EXPECTED_CLIENT = []


class CheckFailed(Exception):
    pass


def expect(cond, why):
    if not cond:
        raise CheckFailed(why)


def reset_world():
    req = urllib.request.Request(
        "http://%s/__apiconform/reset" % ADDR, data=b"", method="POST"
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        resp.read()


def check(name, client=()):
    """A check; `client` lists the (API, rule) findings its requests provoke on purpose."""

    def wrap(fn):
        EXPECTED_CLIENT.extend({"check": name, "api": a, "rule": r} for a, r in client)
        try:
            reset_world()
            fn()
        except CheckFailed as e:
            RESULTS.append(False)
            print("FAIL %s: %s" % (name, e), flush=True)
        except Exception as e:  # an SDK that raised where it should not, or did not import
            RESULTS.append(False)
            last = traceback.format_exception_only(type(e), e)[-1].strip()
            print("FAIL %s: unexpected %s" % (name, last[:300]), flush=True)
        else:
            RESULTS.append(True)
            print("ok %s" % name, flush=True)
        return fn

    return wrap


# ---------------------------------------------------------------------------------------------
# tencentcloud-sdk-python (API 3.0)

from tencentcloud.common import credential  # noqa: E402
from tencentcloud.common.exception.tencent_cloud_sdk_exception import (  # noqa: E402
    TencentCloudSDKException,
)
from tencentcloud.common.profile.client_profile import ClientProfile  # noqa: E402
from tencentcloud.common.profile.http_profile import HttpProfile  # noqa: E402
from tencentcloud.cvm.v20170312 import cvm_client, models as cvm_models  # noqa: E402
from tencentcloud.ecm.v20190719 import ecm_client, models as ecm_models  # noqa: E402


def tencent_profile(sign_method=None, req_method="POST"):
    http = HttpProfile(protocol="http", endpoint=ADDR, reqMethod=req_method)
    return ClientProfile(signMethod=sign_method, httpProfile=http)


def cvm(sign_method=None, req_method="POST"):
    cred = credential.Credential(TENCENT_ID, TENCENT_KEY)
    return cvm_client.CvmClient(cred, TENCENT_REGION, tencent_profile(sign_method, req_method))


def ecm(sign_method=None, req_method="POST", region=""):
    cred = credential.Credential(TENCENT_ID, TENCENT_KEY)
    return ecm_client.EcmClient(cred, region, tencent_profile(sign_method, req_method))


def cvm_keys(instance_id):
    """LoginSettings.KeyIds of one CVM instance, read through the SDK (TC3 POST)."""
    req = cvm_models.DescribeInstancesRequest()
    req.InstanceIds = [instance_id]
    resp = cvm().DescribeInstances(req)
    expect(resp.RequestId, "DescribeInstances: no RequestId")
    expect(len(resp.InstanceSet) == 1, "DescribeInstances: %d instances" % len(resp.InstanceSet))
    return list(resp.InstanceSet[0].LoginSettings.KeyIds or [])


def associate(client, instances, keys):
    req = cvm_models.AssociateInstancesKeyPairsRequest()
    req.InstanceIds = instances
    req.KeyIds = keys
    req.ForceStop = False
    return client.AssociateInstancesKeyPairs(req)


def disassociate(client, instances, keys, models=cvm_models):
    req = models.DisassociateInstancesKeyPairsRequest()
    req.InstanceIds = instances
    req.KeyIds = keys
    req.ForceStop = True
    return client.DisassociateInstancesKeyPairs(req)


def expect_tencent_error(call, code):
    try:
        resp = call()
    except TencentCloudSDKException as e:
        expect(e.get_code() == code, "code %r (%s), want %r" % (e.get_code(), e.get_message(), code))
        expect(e.get_request_id(), "the exception carries no RequestId")
        return
    raise CheckFailed("no exception; the SDK returned %s" % resp)


def tencent_checks(label, sign_method, req_method):
    # Distinct instances per mode only for readability; the world is reset before each check.
    @check("tencent %s cvm AssociateInstancesKeyPairs" % label)
    def _():
        resp = associate(cvm(sign_method, req_method), ["ins-cs000001", "ins-cs000002"], ["skey-ck000005"])
        expect(resp.RequestId, "no RequestId")
        for i in ("ins-cs000001", "ins-cs000002"):
            keys = cvm_keys(i)
            expect(keys == ["skey-ck000005"], "%s KeyIds %r after associate" % (i, keys))

    @check("tencent %s cvm DisassociateInstancesKeyPairs" % label)
    def _():
        expect(cvm_keys("ins-cs000000") == ["skey-ck000000"], "world: ins-cs000000 not bound")
        resp = disassociate(cvm(sign_method, req_method), ["ins-cs000000"], ["skey-ck000000"])
        expect(resp.RequestId, "no RequestId")
        keys = cvm_keys("ins-cs000000")
        expect(keys == [], "KeyIds %r after disassociate" % keys)

    @check(
        "tencent %s cvm malformed instance id -> InvalidInstanceId.Malformed" % label,
        client=[(CVM_ASSOCIATE, "instance-id-format")],
    )
    def _():
        expect_tencent_error(
            lambda: associate(cvm(sign_method, req_method), ["ins-BAD!"], ["skey-ck000001"]),
            "InvalidInstanceId.Malformed",
        )

    @check("tencent %s cvm Windows instance -> UnsupportedOperation.InstanceOsWindows" % label)
    def _():
        expect_tencent_error(
            lambda: disassociate(cvm(sign_method, req_method), ["ins-cw000000"], ["skey-ck000000"]),
            "UnsupportedOperation.InstanceOsWindows",
        )


tencent_checks("tc3-post", None, "POST")
tencent_checks("tc3-get", None, "GET")
for _sign in ("HmacSHA1", "HmacSHA256"):
    for _method in ("GET", "POST"):
        tencent_checks("%s-%s" % (_sign.lower(), _method.lower()), _sign, _method)


def ecm_keys(instance_id):
    """ECM exposes no binding state through its API; read the emulator's world instead."""
    with urllib.request.urlopen("http://%s/__apiconform/world" % ADDR, timeout=10) as resp:
        world = json.load(resp)
    for inst in world["instances"]:
        if inst["product"] == "ecm" and inst["id"] == instance_id:
            return inst["keys"]
    raise CheckFailed("world: no ECM instance %s" % instance_id)


@check("tencent tc3-post ecm DisassociateInstancesKeyPairs")
def _():
    expect(ecm_keys("ein-es000000") == ["skey-ek000000"], "world: ein-es000000 not bound")
    resp = disassociate(ecm(), ["ein-es000000", "ein-es000003"], ["skey-ek000000"], ecm_models)
    expect(resp.RequestId, "no RequestId")
    expect(ecm_keys("ein-es000000") == [], "still bound: %r" % ecm_keys("ein-es000000"))


@check("tencent hmacsha256-post ecm DisassociateInstancesKeyPairs (region ap-guangzhou)")
def _():
    resp = disassociate(
        ecm("HmacSHA256", "POST", TENCENT_REGION), ["ein-es000000"], ["skey-ek000000"], ecm_models
    )
    expect(resp.RequestId, "no RequestId")


@check("tencent tc3-post ecm unknown instance -> InvalidParameterValue.InstanceIdNotSupported")
def _():
    # Seed 001 has no NotFound code: an instance that cannot be operated on is "not supported".
    expect_tencent_error(
        lambda: disassociate(ecm(), ["ein-zzzzzzzz"], ["skey-ek000000"], ecm_models),
        "InvalidParameterValue.InstanceIdNotSupported",
    )


@check(
    "tencent tc3-post ecm malformed key id -> InvalidParameterValue.InvalidKeyPairId",
    client=[("tencent-ecm/DisassociateInstancesKeyPairs", "key-id-format")],
)
def _():
    expect_tencent_error(
        lambda: disassociate(ecm(), ["ein-es000000"], ["skey-NOPE"], ecm_models),
        "InvalidParameterValue.InvalidKeyPairId",
    )


@check(
    "tencent tc3-post wrong secret key -> AuthFailure.SignatureFailure",
    client=[(CVM_ASSOCIATE, "signature-valid")],
)
def _():
    cred = credential.Credential(TENCENT_ID, TENCENT_KEY + "x")
    client = cvm_client.CvmClient(cred, TENCENT_REGION, tencent_profile())
    expect_tencent_error(
        lambda: associate(client, ["ins-cs000001"], ["skey-ck000001"]),
        "AuthFailure.SignatureFailure",
    )


# ---------------------------------------------------------------------------------------------
# QcloudApi 2.0.15 (Tencent API 2.0, UnBindInstanceKey)
#
# QcloudApi builds every connection with its own HTTPS class (`MyHTTPSConnection` in
# QcloudApi.common.request); there is no option for plain HTTP. Its only endpoint hook is the
# `endpoint` config key, honoured for module names it has no built-in host for (its factory
# falls back to `base.Base` with `config["endpoint"]`). So: endpoint through that key, protocol by
# giving the module a plain-HTTP connection class with the same interface. Signing, parameter
# flattening and the request itself are the SDK's own.

import http.client  # noqa: E402

import QcloudApi.common.request as qcloud_request  # noqa: E402
from QcloudApi.qcloudapi import QcloudApi  # noqa: E402


class PlainHTTPConnection(http.client.HTTPConnection):
    """MyHTTPSConnection's interface over plain HTTP (protocol change only)."""

    def __init__(self, host, port=None):
        http.client.HTTPConnection.__init__(self, host, port)
        self.request_length = 0

    def send(self, data):
        http.client.HTTPConnection.send(self, data)
        self.request_length += len(data)

    def request(self, method, url, body=None, headers={}):
        self.request_length = 0
        http.client.HTTPConnection.request(self, method, url, body, headers)


qcloud_request.MyHTTPSConnection = PlainHTTPConnection


def qcloud(method, sign_method):
    config = {
        "Region": TENCENT_REGION,
        "secretId": TENCENT_ID,
        "secretKey": TENCENT_KEY,
        "method": method,
        "SignatureMethod": sign_method,
        "endpoint": ADDR,
    }
    # "cvm" would pin the host to cvm.api.qcloud.com; any module name without a built-in host
    # takes config["endpoint"].
    return QcloudApi("apiconform", config)


def qcloud_call(method, sign_method, params):
    raw = qcloud(method, sign_method).call("UnBindInstanceKey", params, req_timeout=20)
    body = json.loads(raw)
    expect("code" in body and "message" in body, "body lacks code/message: %r" % body)
    return body


for _method, _sign, _inst in (
    ("GET", "HmacSHA1", ["ins-cs000003", "ins-cs000004"]),
    ("POST", "HmacSHA256", ["ins-cs000009"]),
):

    @check("qcloudapi %s %s UnBindInstanceKey" % (_method, _sign))
    def _(method=_method, sign=_sign, instances=_inst):
        key = "skey-ck000042"
        associate(cvm(), instances, [key])  # set-up through API 3.0
        before = {i: cvm_keys(i) for i in instances}
        expect(all(k == [key] for k in before.values()), "set-up: not bound: %r" % before)
        body = qcloud_call(method, sign, {"keyId": key, "instanceIds": instances})
        expect(body["code"] == 0, "code %r (%s), want 0" % (body["code"], body["message"]))
        for i in instances:
            after = cvm_keys(i)
            expect(key not in after, "%s still bound to %s: %r" % (i, key, after))

    @check(
        "qcloudapi %s %s missing keyId -> 4000" % (_method, _sign),
        client=[(V2_UNBIND, "key-id-required")],
    )
    def _(method=_method, sign=_sign, instances=_inst):
        body = qcloud_call(method, sign, {"instanceIds": instances})
        expect(body["code"] == 4000, "code %r (%s), want 4000" % (body["code"], body["message"]))

    @check(
        "qcloudapi %s %s malformed keyId -> 4000" % (_method, _sign),
        client=[(V2_UNBIND, "key-id-format")],
    )
    def _(method=_method, sign=_sign, instances=_inst):
        body = qcloud_call(method, sign, {"keyId": "skey-BAD!", "instanceIds": instances})
        expect(body["code"] == 4000, "code %r (%s), want 4000" % (body["code"], body["message"]))


# ---------------------------------------------------------------------------------------------
# aliyun-python-sdk-core 2.16.1 + aliyun-python-sdk-ecs 4.24.83
#
# Endpoint: AcsClient's `port` plus the request's own endpoint (`set_endpoint`, which bypasses
# the endpoint resolver); protocol: `set_protocol_type("http")`.

from aliyunsdkcore.acs_exception.exceptions import ServerException  # noqa: E402
from aliyunsdkcore.client import AcsClient  # noqa: E402
from aliyunsdkecs.request.v20140526.DescribeInstancesRequest import (  # noqa: E402
    DescribeInstancesRequest,
)
from aliyunsdkecs.request.v20140526.AttachKeyPairRequest import AttachKeyPairRequest  # noqa: E402
from aliyunsdkecs.request.v20140526.DetachKeyPairRequest import DetachKeyPairRequest  # noqa: E402


def acs_client():
    return AcsClient(ALIBABA_ID, ALIBABA_SECRET, ALIBABA_REGION, port=PORT, auto_retry=False, timeout=20)


def acs_do(request):
    request.set_endpoint(HOST)
    request.set_protocol_type("http")
    return json.loads(acs_client().do_action_with_exception(request))


def detach_request(instances, key):
    req = DetachKeyPairRequest()
    req.set_KeyPairName(key)
    req.set_InstanceIds(json.dumps(instances))
    return req


def ecs_key(instance_id):
    req = DescribeInstancesRequest()
    req.set_InstanceIds(json.dumps([instance_id]))
    body = acs_do(req)
    found = body["Instances"]["Instance"]
    expect(len(found) == 1, "DescribeInstances: %d instances" % len(found))
    return found[0].get("KeyPairName", "")


def expect_acs_error(request, code, status):
    try:
        body = acs_do(request)
    except ServerException as e:
        got = (e.get_error_code(), e.get_http_status())
        expect(got == (code, status), "got %r (%s), want %r" % (got, e.get_error_msg(), (code, status)))
        expect(e.get_request_id(), "the exception carries no RequestId")
        return
    raise CheckFailed("no exception; body %r" % body)


@check("aliyun-core DetachKeyPair")
def _():
    ids = ["i-bp1s0000000000000000", "i-bp1s0000000000000010"]
    expect(all(ecs_key(i) == "kp-linux-0" for i in ids), "world: instances not bound to kp-linux-0")
    body = acs_do(detach_request(ids, "kp-linux-0"))
    expect(body.get("RequestId"), "no RequestId")
    results = body.get("Results", {}).get("Result", [])
    expect(
        sorted(r.get("InstanceId") for r in results) == sorted(ids),
        "Results name %r" % [r.get("InstanceId") for r in results],
    )
    expect(all(r.get("Success") in (True, "true") for r in results), "Results %r" % results)
    expect(int(body.get("TotalCount")) == 2 and int(body.get("FailCount")) == 0, "counts %r" % body)
    for i in ids:
        expect(ecs_key(i) == "", "%s still has key pair %r" % (i, ecs_key(i)))


@check("aliyun-core DetachKeyPair unknown instance -> per-item failure")
def _():
    body = acs_do(detach_request(["i-bp1s0000000000000002", "i-bp1zzzzzzzzzzzzzzzzz"], "kp-linux-2"))
    by_id = {r["InstanceId"]: r for r in body["Results"]["Result"]}
    expect(by_id["i-bp1s0000000000000002"]["Success"] in (True, "true"), "known instance failed")
    expect(by_id["i-bp1zzzzzzzzzzzzzzzzz"]["Success"] in (False, "false"), "unknown instance succeeded")
    expect(int(body["FailCount"]) == 1, "FailCount %r" % body["FailCount"])


@check("aliyun-core DetachKeyPair Windows -> 403 DependencyViolation.WindowsInstance")
def _():
    expect_acs_error(
        detach_request(["i-bp1w0000000000000000"], "kp-linux-0"),
        "DependencyViolation.WindowsInstance",
        403,
    )


@check("aliyun-core DetachKeyPair unknown key pair -> 400 InvalidKeyPairName.NotFound")
def _():
    expect_acs_error(
        detach_request(["i-bp1s0000000000000000"], "kp-nope"),
        "InvalidKeyPairName.NotFound",
        400,
    )


# AttachKeyPair has no seed and no code of its own in the emulator: it is served from its spec
# file (specs/alibaba-ecs/AttachKeyPair.yaml) alone.
@check("aliyun-core AttachKeyPair replaces the key pair bound before")
def _():
    ids = ["i-bp1s0000000000000006", "i-bp1s0000000000000007"]
    expect([ecs_key(i) for i in ids] == ["kp-linux-6", ""], "world: %r" % [ecs_key(i) for i in ids])
    req = AttachKeyPairRequest()
    req.set_KeyPairName("kp-linux-8")
    req.set_InstanceIds(json.dumps(ids))
    body = acs_do(req)
    expect(body.get("RequestId"), "no RequestId")
    results = body.get("Results", {}).get("Result", [])
    expect(all(r.get("Success") in (True, "true") for r in results), "Results %r" % results)
    expect(int(body.get("TotalCount")) == 2 and int(body.get("FailCount")) == 0, "counts %r" % body)
    for i in ids:
        expect(ecs_key(i) == "kp-linux-8", "%s holds %r, not kp-linux-8" % (i, ecs_key(i)))


@check("aliyun-core AttachKeyPair Windows -> 403 DependencyViolation.WindowsInstance")
def _():
    req = AttachKeyPairRequest()
    req.set_KeyPairName("kp-linux-0")
    req.set_InstanceIds(json.dumps(["i-bp1w0000000000000001"]))
    expect_acs_error(req, "DependencyViolation.WindowsInstance", 403)


# ---------------------------------------------------------------------------------------------
# alibabacloud-ecs20140526 7.11.8 (Tea / Darabonba), ACS3-HMAC-SHA256 by default and RPC v2.

from alibabacloud_ecs20140526 import models as tea_ecs_models  # noqa: E402
from alibabacloud_ecs20140526.client import Client as TeaEcsClient  # noqa: E402
from alibabacloud_tea_openapi import models as open_api_models  # noqa: E402
from Tea.exceptions import TeaException  # noqa: E402


def tea_client(signature_algorithm):
    config = open_api_models.Config(
        access_key_id=ALIBABA_ID,
        access_key_secret=ALIBABA_SECRET,
        region_id=ALIBABA_REGION,
        endpoint=ADDR,
        protocol="http",
        read_timeout=20000,
        connect_timeout=5000,
    )
    if signature_algorithm:
        config.signature_algorithm = signature_algorithm
    return TeaEcsClient(config)


def tea_detach(signature_algorithm, instances, key):
    req = tea_ecs_models.DetachKeyPairRequest(
        region_id=ALIBABA_REGION, key_pair_name=key, instance_ids=json.dumps(instances)
    )
    return tea_client(signature_algorithm).detach_key_pair(req)


for _label, _alg in (("acs3", None), ("v2", "v2")):

    @check("tea-ecs %s DetachKeyPair" % _label)
    def _(alg=_alg):
        ids = ["i-bp1s0000000000000004", "i-bp1s0000000000000014"]
        resp = tea_detach(alg, ids, "kp-linux-4")
        expect(resp.status_code == 200, "status %r" % resp.status_code)
        body = resp.body
        expect(body.request_id, "no RequestId")
        results = body.results.result
        expect(sorted(r.instance_id for r in results) == sorted(ids), "Results %r" % results)
        expect(all(str(r.success).lower() == "true" for r in results), "Results not all Success")
        expect(int(body.fail_count) == 0 and int(body.total_count) == 2, "counts wrong")
        for i in ids:
            expect(ecs_key(i) == "", "%s still has key pair %r" % (i, ecs_key(i)))

    @check("tea-ecs %s DetachKeyPair Windows -> DependencyViolation.WindowsInstance" % _label)
    def _(alg=_alg):
        try:
            resp = tea_detach(alg, ["i-bp1w0000000000000000"], "kp-linux-0")
        except TeaException as e:
            status = getattr(e, "status_code", None) or getattr(e, "statusCode", None)
            expect(
                (e.code, status) == ("DependencyViolation.WindowsInstance", 403),
                "got %r (%s), want %r" % ((e.code, status), e.message, ("DependencyViolation.WindowsInstance", 403)),
            )
            return
        raise CheckFailed("no exception; status %r body %r" % (resp.status_code, resp.body))


for _label, _alg, _ids in (
    ("acs3", None, ["i-bp1s0000000000000012", "i-bp1s0000000000000013"]),
    ("v2", "v2", ["i-bp1s0000000000000022", "i-bp1s0000000000000023"]),
):

    @check("tea-ecs %s AttachKeyPair" % _label)
    def _(alg=_alg, ids=_ids):
        req = tea_ecs_models.AttachKeyPairRequest(
            region_id=ALIBABA_REGION, key_pair_name="kp-linux-9", instance_ids=json.dumps(ids)
        )
        resp = tea_client(alg).attach_key_pair(req)
        expect(resp.status_code == 200, "status %r" % resp.status_code)
        expect(resp.body.request_id, "no RequestId")
        expect(int(resp.body.fail_count) == 0 and int(resp.body.total_count) == 2, "counts wrong")
        for i in ids:
            expect(ecs_key(i) == "kp-linux-9", "%s holds %r, not kp-linux-9" % (i, ecs_key(i)))


if os.environ.get("APICONFORM_PROXY_EXPECT"):
    with open(os.environ["APICONFORM_PROXY_EXPECT"], "w") as out:
        json.dump(EXPECTED_CLIENT, out, indent=1)

passed = sum(RESULTS)
failed = len(RESULTS) - passed
print("%d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
