"""airflow_iterate.sftp exposes exactly its __all__, and every error it raises is an IterateError."""

from __future__ import annotations

import pickle

import airflow_iterate
import airflow_iterate.sftp as sftp

PUBLIC = {
    "PoolStatistics",
    "RemoteFile",
    "SFTPAcquireTimeoutError",
    "SFTPConnectError",
    "SFTPConnectionLostError",
    "SFTPFileNotFoundError",
    "SFTPPermissionError",
    "SFTPPool",
    "SFTPPoolClosedError",
    "SFTPPoolError",
    "SFTPPoolUsageError",
    "SFTPTransferError",
    "SyncPoolStatistics",
    "SyncSFTPPool",
    "TransferResult",
    "download_bytes",
    "download_file",
    "download_many",
    "download_to_storage",
    "list_files",
    "upload_file",
    "upload_many",
}


def test_all_lists_the_public_api_and_nothing_else() -> None:
    assert set(sftp.__all__) == PUBLIC
    public_names = {n for n in vars(sftp) if not n.startswith("_")}
    assert public_names - {"annotations"} == PUBLIC


def test_every_error_is_an_iterate_error_and_catchable_as_the_builtin_it_means() -> None:
    errors = [getattr(sftp, n) for n in PUBLIC if isinstance(getattr(sftp, n), type)]
    errors = [e for e in errors if issubclass(e, BaseException)]
    assert len(errors) == 9
    assert all(issubclass(e, airflow_iterate.IterateError) for e in errors)
    assert issubclass(sftp.SFTPFileNotFoundError, FileNotFoundError)
    assert issubclass(sftp.SFTPPermissionError, PermissionError)
    assert issubclass(sftp.SFTPConnectionLostError, ConnectionError)
    assert issubclass(sftp.SFTPAcquireTimeoutError, TimeoutError)


def test_errors_survive_pickling() -> None:
    error = sftp.SFTPFileNotFoundError("download failed", operation="download", path="/a", conn_id="c")
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is sftp.SFTPFileNotFoundError
    assert (str(copy), copy.path, copy.operation, copy.conn_id) == (str(error), "/a", "download", "c")
    connect = pickle.loads(pickle.dumps(sftp.SFTPConnectError("x", conn_id="c", transient=True)))
    assert (connect.conn_id, connect.transient) == ("c", True)


def test_the_old_name_of_the_acquire_timeout_still_works_with_a_warning() -> None:
    import pytest

    with pytest.warns(DeprecationWarning, match="SFTPAcquireTimeoutError"):
        old = sftp.SFTPAcquireTimeout
    assert old is sftp.SFTPAcquireTimeoutError
    assert sftp.SFTPAcquireTimeoutError.__module__ == "airflow_iterate.sftp"
