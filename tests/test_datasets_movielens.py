"""Tests of kerasmt.datasets.movielens: synthetic generator, reader, bad-input treatments,
checker and the checksum-verified download (served from a local zip, never the network)."""
from __future__ import annotations

import hashlib
import io
import re
import shutil
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kerasmt.datasets import DatasetError
from kerasmt.datasets import movielens as ml

N, USERS, MOVIES = 12_000, 300, 1500


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    return ml.synthesize(tmp_path_factory.mktemp("ml") / "data", n=N, n_users=USERS, n_movies=MOVIES, seed=3)


@pytest.fixture
def copy(synth, tmp_path) -> Path:
    dst = tmp_path / "copy"
    shutil.copytree(synth, dst)
    return dst


def _write(root: Path, movies: str, ratings: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "movies.csv").write_text(movies)
    (root / "ratings.csv").write_text(ratings)
    return root


MOVIES_CSV = """movieId,title,genres
1,Toy Story (1995),Adventure|Animation|Children|Comedy|Fantasy
2,Jumanji (1995),Adventure|Children|Fantasy
3,"Grumpier Old Men, The (1995)",Comedy|Romance
4,Nothing (2000),(no genres listed)
"""


# ----------------------------------------------------------------------------------- synthesis
def test_synthesize_layout_sizes_and_realism(synth):
    assert (synth / ".complete").is_file()
    movies = pd.read_csv(synth / "movies.csv")
    ratings = pd.read_csv(synth / "ratings.csv")
    assert list(movies.columns) == ["movieId", "title", "genres"]
    assert list(ratings.columns) == ["userId", "movieId", "rating", "timestamp"]
    assert len(movies) == MOVIES and len(ratings) == N
    # user ids 1..n_users (the report's users 4, 42 exist), movie ids unique and sparse
    assert sorted(ratings["userId"].unique()) == list(range(1, USERS + 1))
    assert movies["movieId"].is_unique and movies["movieId"].is_monotonic_increasing
    assert movies["movieId"].max() > MOVIES
    assert set(ratings["movieId"]) <= set(movies["movieId"])
    # half-star scale 0.5..5.0, MovieLens-like mean; whole stars for users before 2003
    assert ratings["rating"].between(0.5, 5.0).all()
    assert np.allclose(ratings["rating"] * 2, np.round(ratings["rating"] * 2))
    assert 3.2 < ratings["rating"].mean() < 3.9
    assert ratings["rating"].value_counts().idxmax() in (3.0, 4.0)
    early = ratings["timestamp"] < 1045526400
    assert (ratings.loc[early, "rating"] % 1 == 0).all()
    # every user has >= 20 ratings, no duplicate pair, heavy-tailed activity
    per_user = ratings.groupby("userId").size()
    assert per_user.min() >= 20 and per_user.max() > 4 * per_user.median()
    assert not ratings.duplicated(["userId", "movieId"]).any()
    # Zipf-like popularity: the top movie is rated by far more users than the median movie
    per_movie = ratings.groupby("movieId").size()
    assert per_movie.max() > 20 * per_movie.median()
    # titles "Name (Year)", genres from the 19 MovieLens genres, pipe-separated
    assert movies["title"].str.match(r"^.+ \((19|20)\d\d\)$").all()
    genres = set(movies["genres"].str.split("|").explode())
    assert genres <= set(ml.GENRES) | {ml.NO_GENRES}
    assert len(genres & set(ml.GENRES)) == 19
    assert ml.check(synth) == []


def test_synthesize_is_deterministic_and_reused(synth, tmp_path):
    again = ml.synthesize(tmp_path / "again", n=N, n_users=USERS, n_movies=MOVIES, seed=3)
    for name in ("movies.csv", "ratings.csv"):
        assert hashlib.sha256((synth / name).read_bytes()).digest() == \
            hashlib.sha256((again / name).read_bytes()).digest()
    stamp = (again / "ratings.csv").stat().st_mtime_ns
    assert ml.synthesize(again, n=N, n_users=USERS, n_movies=MOVIES, seed=3) == again
    assert (again / "ratings.csv").stat().st_mtime_ns == stamp  # reused, not rewritten
    with pytest.raises(DatasetError, match="made with"):
        ml.synthesize(again, n=N, n_users=USERS, n_movies=MOVIES, seed=4)
    other = ml.synthesize_frames(n=N, n_users=USERS, n_movies=MOVIES, seed=4)
    assert not other.ratings.equals(pd.read_csv(synth / "ratings.csv"))


def test_synthesize_refuses_bad_arguments_and_foreign_folders(tmp_path):
    with pytest.raises(ValueError, match="20 \\* n_users"):
        ml.synthesize_frames(n=100, n_users=10, n_movies=100)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(DatasetError, match="not empty"):
        ml.synthesize(tmp_path / "busy", n=2000, n_users=50, n_movies=300)
    assert (tmp_path / "busy" / "notes.txt").read_text() == "mine"


# ------------------------------------------------------------------------------------- reading
def test_load_dtypes_and_round_trip(synth):
    ratings, movies = ml.load(synth)
    assert ratings.dtypes.to_dict() == {"userId": np.int32, "movieId": np.int32, "rating": np.float32,
                                        "timestamp": np.int64}
    assert movies["movieId"].dtype == np.int32
    assert pd.api.types.is_string_dtype(movies["genres"]) and pd.api.types.is_string_dtype(movies["title"])
    raw = pd.read_csv(synth / "ratings.csv")
    assert np.array_equal(ratings["rating"].to_numpy(), raw["rating"].to_numpy(np.float32))
    assert len(ratings) == N and len(movies) == MOVIES


def test_load_accepts_the_parent_of_a_release_folder(synth, tmp_path):
    parent = tmp_path / "parent"
    shutil.copytree(synth, parent / "ml-latest-small")
    assert ml.resolve_root(parent) == (parent / "ml-latest-small").resolve()
    assert len(ml.load(parent).ratings) == N
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no movies.csv / ratings.csv here nor in a subfolder"):
        ml.load(tmp_path / "empty")


def test_missing_column_names_file_and_column(tmp_path):
    root = _write(tmp_path / "d", MOVIES_CSV, "userId,movieId,timestamp\n1,1,5\n")
    with pytest.raises(DatasetError, match=r"ratings\.csv: missing column\(s\) \['rating'\]"):
        ml.load(root)
    root = _write(tmp_path / "e", "movieId,title\n1,A (2000)\n", "userId,movieId,rating\n1,1,4\n")
    with pytest.raises(DatasetError, match=r"movies\.csv: missing column\(s\) \['genres'\]"):
        ml.load(root)


def test_bad_values_are_named_by_line(tmp_path):
    root = _write(tmp_path / "d", MOVIES_CSV,
                  "userId,movieId,rating,timestamp\n1,1,4.0,10\n1,2,abc,11\n2,x,3.0,12\n2,3,,13\n")
    with pytest.raises(DatasetError) as info:
        ml.load(root)
    text = str(info.value)
    assert "line 3: column 'rating': bad value 'abc'" in text
    assert "line 4: column 'movieId': bad value 'x'" in text
    assert "line 5: column 'rating': empty value" in text


def test_ratings_outside_the_scale_error_or_are_dropped_with_a_count(tmp_path):
    root = _write(tmp_path / "d", MOVIES_CSV,
                  "userId,movieId,rating,timestamp\n1,1,4.0,10\n1,2,7.5,11\n2,1,0.0,12\n2,2,5.0,13\n")
    with pytest.raises(DatasetError) as info:
        ml.load(root)
    assert "line 3: rating 7.5 outside the scale [0.5, 5.0]" in str(info.value)
    assert "line 4: rating 0 outside" in str(info.value)
    with pytest.warns(ml.MovieLensWarning, match="dropped 2 rating row"):
        ratings, _ = ml.load(root, bad_ratings="drop")
    assert ratings[["userId", "movieId"]].values.tolist() == [[1, 1], [2, 2]]


def test_duplicates_keep_the_latest_rating_with_a_warning(tmp_path):
    root = _write(tmp_path / "d", MOVIES_CSV,
                  "userId,movieId,rating,timestamp\n1,1,2.0,50\n1,2,3.0,10\n1,1,4.5,40\n1,1,1.0,60\n2,1,3.0,5\n")
    with pytest.warns(ml.MovieLensWarning, match="2 duplicate \\(userId, movieId\\) row"):
        ratings, _ = ml.load(root)
    assert len(ratings) == 3
    assert ratings.loc[(ratings.userId == 1) & (ratings.movieId == 1), "rating"].item() == 1.0  # t=60
    with pytest.raises(DatasetError, match="line 4: userId 1, movieId 1 rated more than once"):
        ml.load(root, duplicates="error")


def test_unknown_movies_dropped_with_count_and_empty_genres_filled(tmp_path):
    movies = MOVIES_CSV + "5,Blank (2001),\n5,Again (2002),Drama\n"
    root = _write(tmp_path / "d", movies,
                  "userId,movieId,rating,timestamp\n1,1,4.0,1\n1,99,3.0,2\n2,98,3.0,3\n2,5,2.0,4\n")
    with pytest.warns(ml.MovieLensWarning) as record:
        ratings, movies_out = ml.load(root)
    messages = " | ".join(str(w.message) for w in record)
    assert "1 movie(s) with an empty genres cell" in messages
    assert "1 duplicate movieId row(s)" in messages
    assert "dropped 2 rating(s) of 2 movie(s) not listed" in messages
    assert sorted(ratings["movieId"]) == [1, 5]
    assert movies_out.loc[movies_out.movieId == 5, "genres"].item() == ml.NO_GENRES
    assert movies_out["movieId"].is_unique
    with pytest.raises(DatasetError, match="line 3: movieId 99 not in the movies table"), \
            pytest.warns(ml.MovieLensWarning):
        ml.load(root, unknown_movies="error")


def test_check_lists_every_problem(copy):
    ratings = pd.read_csv(copy / "ratings.csv")
    ratings.loc[3, "rating"] = 9.0
    ratings["userId"] = ratings["userId"].astype(object)
    ratings.loc[5, "userId"] = "oops"
    ratings = pd.concat([ratings, ratings.iloc[[10]]], ignore_index=True)  # duplicate pair
    ratings.loc[len(ratings)] = [1, 123456789, 3.0, 0]  # unknown movie
    ratings.to_csv(copy / "ratings.csv", index=False)
    movies = pd.read_csv(copy / "movies.csv")
    movies.loc[2, "genres"] = ""
    movies = pd.concat([movies, movies.iloc[[7]]], ignore_index=True)
    movies.to_csv(copy / "movies.csv", index=False)
    problems = ml.check(copy)
    text = "\n".join(problems)
    assert len(problems) == 6, text
    assert "ratings.csv: line 5: rating 9 outside the scale" in text
    assert "ratings.csv: line 7: column 'userId': bad value 'oops'" in text
    assert f"ratings.csv: line {len(ratings)}: userId" in text and "rated more than once" in text
    assert "movieId 123456789 is not listed in movies.csv" in text
    assert "movies.csv: line 4: column 'genres': empty value" in text
    assert f"movies.csv: line {len(movies) + 1}: duplicate movieId" in text
    assert ml.check(copy / "nowhere")[0].endswith("dataset folder not found (expected a MovieLens folder holding movies.csv and ratings.csv)")


# -------------------------------------------------------------------------------------- fetching
def _zip_of(folder: Path, inner: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name in ("movies.csv", "ratings.csv"):
            zf.write(folder / name, f"{inner}/{name}")
    return buffer.getvalue()


class _Server:
    """Stands in for ``urllib.request.urlopen``: serves bytes by URL, records what was asked."""

    def __init__(self, files: dict[str, bytes]):
        self.files, self.asked = files, []

    def __call__(self, url, timeout=None):
        self.asked.append(url)
        assert url.startswith("https://files.grouplens.org/datasets/movielens/"), url
        if url not in self.files:
            raise OSError(f"404 {url}")
        return io.BytesIO(self.files[url])


URL = "https://files.grouplens.org/datasets/movielens/"


def test_fetch_verifies_against_the_published_md5(synth, tmp_path, monkeypatch):
    blob = _zip_of(synth, "ml-latest-small")
    md5 = hashlib.md5(blob).hexdigest()
    server = _Server({URL + "ml-latest-small.zip": blob,
                      URL + "ml-latest-small.zip.md5": f"MD5 (ml-latest-small.zip) = {md5}\n".encode()})
    monkeypatch.setattr(urllib.request, "urlopen", server)
    folder = ml.fetch(tmp_path / "dl")
    assert folder == (tmp_path / "dl" / "ml-latest-small").resolve()
    assert len(ml.load(tmp_path / "dl").ratings) == N
    sha = hashlib.sha256(blob).hexdigest()
    assert (tmp_path / "dl" / "ml-latest-small.zip.sha256").read_text().split()[0] == sha
    assert server.asked == [URL + "ml-latest-small.zip", URL + "ml-latest-small.zip.md5"]
    assert ml.fetch(tmp_path / "dl") == folder and len(server.asked) == 2  # reused, no download
    # pinning the sha256 skips the md5 file
    server.asked.clear()
    ml.fetch(tmp_path / "dl2", sha256=sha)
    assert server.asked == [URL + "ml-latest-small.zip"]


def test_fetch_rejects_a_corrupt_download_and_extracts_nothing(synth, tmp_path, monkeypatch):
    blob = _zip_of(synth, "ml-latest-small")
    server = _Server({URL + "ml-latest-small.zip": blob[:-10] + b"0123456789",
                      URL + "ml-latest-small.zip.md5": hashlib.md5(blob).hexdigest().encode()})
    monkeypatch.setattr(urllib.request, "urlopen", server)
    with pytest.raises(DatasetError, match="checksum mismatch against the md5 published"):
        ml.fetch(tmp_path / "dl")
    assert not (tmp_path / "dl" / "ml-latest-small").exists()
    assert [p.name for p in (tmp_path / "dl").iterdir()] == []
    # ml-25m has a pinned md5: a different archive fails without asking for the .md5 file
    server = _Server({URL + "ml-25m.zip": _zip_of(synth, "ml-25m")})
    monkeypatch.setattr(urllib.request, "urlopen", server)
    with pytest.raises(DatasetError, match="expected 6b51fb2759a8657d3bfcbfc42b592ada"):
        ml.fetch(tmp_path / "dl", "ml-25m")
    assert server.asked == [URL + "ml-25m.zip"]
    with pytest.raises(ValueError, match="unknown MovieLens variant"):
        ml.fetch(tmp_path / "dl", "ml-1b")


def test_fetch_refuses_unsafe_archive_paths(tmp_path, monkeypatch):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("../evil/movies.csv", MOVIES_CSV)
    blob = buffer.getvalue()
    monkeypatch.setattr(urllib.request, "urlopen", _Server({URL + "ml-latest-small.zip": blob}))
    with pytest.raises(DatasetError, match="unsafe path"):
        ml.fetch(tmp_path / "dl", sha256=hashlib.sha256(blob).hexdigest())
    assert not (tmp_path / "evil").exists()
    assert re.fullmatch(r"[0-9a-f]{32}", ml.VARIANTS["ml-25m"]["md5"])


# ------------------------------------------------------------------ issue 14: ids, timestamps, bytes
@pytest.mark.parametrize("line, column, value", [
    ("1,4294967325,3.0,11", "movieId", "4294967325"),   # 2**32 + 29 wrapped onto movie 29
    ("5000000000,1,3.0,12", "userId", "5000000000"),    # wrapped onto user 705,032,704
    ("1,-2147483649,3.0,12", "movieId", "-2147483649"),
    ("99999999999999999999999,1,3.0,12", "userId", "99999999999999999999999"),  # beyond int64
])
def test_ids_beyond_int32_are_rejected_with_the_line_not_wrapped(tmp_path, line, column, value):
    root = _write(tmp_path / "d", MOVIES_CSV, f"userId,movieId,rating,timestamp\n1,1,4.0,10\n2,2,4.0,10\n{line}\n")
    expected = f"ratings.csv: line 4: column '{column}': bad value '{value}'; expected an integer id"
    with pytest.raises(DatasetError) as info:
        ml.load(root)
    assert expected in str(info.value)
    problems = ml.check(root)  # check and load agree
    assert len(problems) == 1 and expected in problems[0]
    with pytest.warns(ml.MovieLensWarning, match="dropped 1 rating row"):
        ratings, _ = ml.load(root, bad_ratings="drop")
    assert ratings[["userId", "movieId"]].values.tolist() == [[1, 1], [2, 2]]
    # a typed frame (int64 ids, as a user builds it) is checked the same way
    frame = pd.DataFrame({"userId": [1, 5_000_000_000], "movieId": [2**32 + 29, 1], "rating": [4.0, 3.0]})
    with pytest.raises(DatasetError) as info:
        ml.clean_ratings(frame)
    assert "row 0: column 'movieId': bad value 4294967325" in str(info.value)
    assert "row 1: column 'userId': bad value 5000000000" in str(info.value)


def test_a_bad_timestamp_is_rejected_not_read_as_1970(tmp_path):
    ratings = "userId,movieId,rating,timestamp\n1,1,2.0,50\n1,1,4.5,soon\n2,1,3.0,\n"
    root = _write(tmp_path / "d", MOVIES_CSV, ratings)
    with pytest.raises(DatasetError) as info:
        ml.load(root)
    text = str(info.value)
    assert "line 3: column 'timestamp': bad value 'soon'; expected an integer (seconds since 1970)" in text
    assert "line 4: column 'timestamp': empty value" in text
    problems = ml.check(root)
    assert len(problems) == 2 and "line 3: column 'timestamp'" in problems[0]
    # dropped with a count: the duplicate rule then has no row with a made-up time to choose
    with pytest.warns(ml.MovieLensWarning, match="dropped 2 rating row"):
        kept, _ = ml.load(root, bad_ratings="drop")
    assert kept.values.tolist() == [[1, 1, 2.0, 50]]


@pytest.mark.parametrize("which", ["movies.csv", "ratings.csv"])
def test_non_utf8_bytes_name_the_file_and_line(tmp_path, which):
    root = _write(tmp_path / "d", MOVIES_CSV, "userId,movieId,rating,timestamp\n1,1,4.0,10\n1,2,3.0,11\n")
    path = root / which
    data = path.read_bytes().splitlines(keepends=True)
    data.insert(2, b"3,Caf\xe9 (1999),Drama\n" if which == "movies.csv" else b"2,\xff\xfe,3.0,12\n")
    path.write_bytes(b"".join(data))
    expected = rf"{which}: line 3: byte\(s\) b'\\x(e9|ff).*are not UTF-8; expected a UTF-8 CSV"
    with pytest.raises(DatasetError, match=expected):
        ml.load(root)
    problems = ml.check(root)
    assert any(re.search(expected, p) for p in problems), problems


def test_check_levels_follow_load(copy):
    """What load refuses is an error in check; what it handles with a counted warning is a warning."""
    from kerasmt.datasets.base import errors, level_of

    ratings = pd.read_csv(copy / "ratings.csv")
    ratings = pd.concat([ratings, ratings.iloc[[10]]], ignore_index=True)  # duplicate: load keeps the latest
    ratings.to_csv(copy / "ratings.csv", index=False)
    findings = ml.check(copy)
    assert [level_of(f) for f in findings] == ["warning"] and errors(findings) == []
    with pytest.warns(ml.MovieLensWarning, match="1 duplicate"):
        ml.load(copy)
    ratings["timestamp"] = ratings["timestamp"].astype(object)
    ratings.loc[3, "timestamp"] = "later"
    ratings.to_csv(copy / "ratings.csv", index=False)
    findings = ml.check(copy)
    assert [level_of(f) for f in findings] == ["error", "warning"]
    with pytest.raises(DatasetError, match="line 5: column 'timestamp'"):
        ml.load(copy)


def test_chunked_reader_agrees_with_one_chunk(synth, tmp_path, monkeypatch):
    whole = ml.load(synth)
    monkeypatch.setattr(ml, "_READ_CHUNK", 997)  # many chunks
    chunked = ml.load(synth)
    pd.testing.assert_frame_equal(chunked.ratings, whole.ratings)
    assert chunked.ratings["userId"].dtype == np.int32 and chunked.ratings["movieId"].dtype == np.int32
    # a bad id or non-UTF-8 bytes in a later chunk are still named by line
    monkeypatch.setattr(ml, "_READ_CHUNK", 2)
    lines = ["userId,movieId,rating,timestamp"] + [f"{u},1,4.0,{u}" for u in range(1, 8)]
    root = _write(tmp_path / "d", MOVIES_CSV, "\n".join(lines[:6] + ["9,4294967325,3.0,1"] + lines[6:]) + "\n")
    with pytest.raises(DatasetError, match=r"line 7: column 'movieId': bad value '4294967325'"):
        ml.load(root)
    (root / "ratings.csv").write_bytes(("\n".join(lines[:6]) + "\n").encode() + b"9,\xff,3.0,1\n")
    with pytest.raises(DatasetError, match=r"ratings\.csv: line 7: byte\(s\) b'\\xff"):
        ml.load(root)
