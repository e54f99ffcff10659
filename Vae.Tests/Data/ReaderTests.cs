using System.IO.Compression;
using Vae.Core.Data;
using Vae.Data;

namespace Vae.Tests.Data;

public class RealFilesTests
{
    [Fact]
    public void MnistHasTheOfficialShapesLabelsAndPixels()
    {
        var mnist = DataSets.Mnist(TestEnvironment.CachedData);
        Assert.Equal((60000, 28, 28), (mnist.Train.Count, mnist.Train.Height, mnist.Train.Width));
        Assert.Equal((10000, 28, 28), (mnist.Test.Count, mnist.Test.Height, mnist.Test.Width));
        Assert.Equal(new byte[] { 5, 0, 4, 1, 9, 2 }, mnist.TrainLabels![..6]);
        Assert.Equal(new byte[] { 7, 2, 1, 0, 4, 1 }, mnist.TestLabels![..6]);
        // Training image 0 (a 5), row 7, columns 7-9: bytes 49, 238, 253.
        var first = mnist.Train.Image(0);
        Assert.Equal([49 / 255f, 238 / 255f, 253 / 255f], first.Slice(7 * 28 + 7, 3).ToArray());
        Assert.Equal(1f, mnist.Test.Image(0)[355]);
        Assert.All(mnist.Train.Pixels.ToArray(), v => Assert.InRange(v, 0f, 1f));
        Assert.Equal(0f, mnist.Train.Pixels.ToArray().Min());
        Assert.Equal(1f, mnist.Train.Pixels.ToArray().Max());
    }

    [Fact]
    public void MnistPaperSplitsAreTheFirst50000AndTheLast10000()
    {
        var paper = DataSets.MnistPaper(TestEnvironment.CachedData);
        var validation = DataSets.MnistValidation(TestEnvironment.CachedData);
        Assert.Equal(50000, paper.Train.Count);
        Assert.Equal(10000, paper.Test.Count);
        Assert.Equal(10000, validation.Test.Count);
        var all = DataSets.Mnist(TestEnvironment.CachedData);
        Assert.True(all.Train.Image(50000).SequenceEqual(validation.Test.Image(0)));
        Assert.Equal(all.TrainLabels![50000], validation.TestLabels![0]);
    }

    [Fact]
    public void FreyFaceHas1965UprightImagesScaledBy256()
    {
        var path = Vae.Core.Data.FreyFace.fetch(TestEnvironment.CachedData.ToCore());
        var images = Vae.Core.Data.FreyFace.read(path);
        Assert.Equal((1965, 28, 20), (images.Count, images.Height, images.Width));
        // The file's first bytes of image 0 are 81, 136, 167; image 100's pixel 290 is 106.
        Assert.Equal([81 / 256f, 136 / 256f, 167 / 256f], images.Pixels[..3]);
        Assert.Equal(106 / 256f, images.Pixels[100 * 560 + 290]);
        Assert.Equal(184 / 256f, images.Pixels[^1]);
        Assert.Equal(8 / 256f, images.Pixels.Min());
        Assert.Equal(238 / 256f, images.Pixels.Max());
        Assert.Equal(154.46, images.Pixels.Average(v => v * 256.0), 2);
    }

    [Fact]
    public void FreyFaceSplitIsSeeded1700To265AndDisjoint()
    {
        var a = DataSets.FreyFace(TestEnvironment.CachedData, seed: 0);
        var b = DataSets.FreyFace(TestEnvironment.CachedData, seed: 0);
        var c = DataSets.FreyFace(TestEnvironment.CachedData, seed: 1);
        Assert.Equal((1700, 265), (a.Train.Count, a.Test.Count));
        Assert.True(a.Train.Pixels.SequenceEqual(b.Train.Pixels));
        Assert.False(a.Train.Pixels.SequenceEqual(c.Train.Pixels));
        var train = Enumerable.Range(0, 1700).Select(i => Convert.ToBase64String(System.Runtime.InteropServices.MemoryMarshal.AsBytes(a.Train.Image(i)))).ToHashSet();
        Assert.DoesNotContain(Enumerable.Range(0, 265), i => train.Contains(Convert.ToBase64String(System.Runtime.InteropServices.MemoryMarshal.AsBytes(a.Test.Image(i)))));
    }
}

public class BadInputTests
{
    static string Write(string dir, string name, byte[] bytes)
    {
        string path = Path.Combine(dir, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    static byte[] SmallIdx() => Idx.encode([2, 3, 4], Enumerable.Range(0, 24).Select(i => (byte)(i * 10)).ToArray());

    [Fact]
    public void IdxReadsRawAndGzipAlike()
    {
        string dir = TestEnvironment.NewTempDirectory();
        var raw = Idx.readImages(Write(dir, "raw", SmallIdx()));
        using var ms = new MemoryStream();
        using (var gz = new GZipStream(ms, CompressionLevel.Fastest, leaveOpen: true)) gz.Write(SmallIdx());
        var zipped = Idx.readImages(Write(dir, "raw.gz", ms.ToArray()));
        Assert.Equal((2, 3, 4), (raw.Count, raw.Height, raw.Width));
        Assert.Equal(raw.Pixels, zipped.Pixels);
        Assert.Equal(230 / 255f, raw.Pixels[23]);
    }

    [Fact]
    public void TruncatedIdxNamesTheFileAndTheDataLength()
    {
        string path = Write(TestEnvironment.NewTempDirectory(), "cut-idx3-ubyte", SmallIdx()[..^5]);
        var e = Assert.Throws<DataFormatException>(() => Idx.readImages(path));
        Assert.Equal(path, e.File);
        Assert.Equal("data length", e.Field);
        Assert.Contains("24 bytes", e.Message);
        Assert.Contains("truncated", e.Message);
    }

    [Fact]
    public void WrongIdxMagicNumberIsNamed()
    {
        var bytes = SmallIdx();
        bytes[0] = 0x12;
        string path = Write(TestEnvironment.NewTempDirectory(), "bad", bytes);
        var e = Assert.Throws<DataFormatException>(() => Idx.readImages(path));
        Assert.Equal("magic number", e.Field);
        Assert.StartsWith(path + ": magic number: expected", e.Message);
    }

    [Fact]
    public void IdxDimensionsThatDisagreeWithTheFileSizeAreNamed()
    {
        var bytes = SmallIdx();
        bytes[7] = 3; // the first dimension says 3 images; the file holds 2
        var e = Assert.Throws<DataFormatException>(() => Idx.readImages(Write(TestEnvironment.NewTempDirectory(), "dims", bytes)));
        Assert.Equal("data length", e.Field);
        Assert.Contains("3 x 3 x 4", e.Message);
    }

    [Fact]
    public void IdxWithTheWrongNumberOfDimensionsForImagesIsNamed()
    {
        var labels = Idx.encode([4], [1, 2, 3, 4]);
        var e = Assert.Throws<DataFormatException>(() => Idx.readImages(Write(TestEnvironment.NewTempDirectory(), "labels", labels)));
        Assert.Equal("dimension count", e.Field);
    }

    [Fact]
    public void TruncatedGzipIsAFormatError()
    {
        using var ms = new MemoryStream();
        using (var gz = new GZipStream(ms, CompressionLevel.Fastest, leaveOpen: true)) gz.Write(new byte[5000]);
        var e = Assert.Throws<DataFormatException>(() => Idx.readImages(Write(TestEnvironment.NewTempDirectory(), "x.gz", ms.ToArray()[..20])));
        Assert.Equal("gzip stream", e.Field);
    }

    [Fact]
    public void ChecksumMismatchInTheCacheNamesTheFileAndBothHashes()
    {
        string path = Write(TestEnvironment.NewTempDirectory(), "train-labels-idx1-ubyte", Idx.encode([4], [1, 2, 3, 4]));
        string expected = Vae.Core.Data.Mnist.Files.Head.Sha256;
        var e = Assert.Throws<ChecksumMismatchException>(() => Cache.verify(path, expected));
        Assert.Equal(path, e.File);
        Assert.Contains(expected, e.Message);
        Assert.Contains(Cache.sha256File(path), e.Message);
    }

    [Fact]
    public void MatFileReadsPlainAndCompressedElements()
    {
        var values = Enumerable.Range(0, 6).Select(i => (byte)(i + 1)).ToArray();
        var vars = Microsoft.FSharp.Collections.ListModule.OfSeq(new[] { Tuple.Create("ff", new[] { 2, 3 }, values), Tuple.Create("longname", new[] { 1, 1 }, new byte[] { 9 }) });
        string dir = TestEnvironment.NewTempDirectory();
        foreach (bool compress in new[] { false, true })
        {
            string path = Write(dir, $"m{compress}.mat", MatFile.encode(compress, vars));
            var ff = MatFile.readVariable(path, "ff");
            Assert.Equal("uint8", ff.Class);
            Assert.Equal([2, 3], ff.Dims);
            Assert.Equal(values.Select(v => (double)v), ff.Values);
            Assert.Equal([9.0], MatFile.readVariable(path, "longname").Values);
        }
    }

    [Fact]
    public void MatFileWithoutTheVariableNamesWhatItHas()
    {
        var vars = Microsoft.FSharp.Collections.ListModule.OfSeq(new[] { Tuple.Create("xx", new[] { 1, 2 }, new byte[] { 1, 2 }) });
        string path = Write(TestEnvironment.NewTempDirectory(), "other.mat", MatFile.encode(false, vars));
        var e = Assert.Throws<DataFormatException>(() => Vae.Core.Data.FreyFace.read(path));
        Assert.Equal("variable 'ff'", e.Field);
        Assert.Contains("only xx", e.Message);
    }

    [Fact]
    public void MatFileOfAnUnsupportedClassIsNamed()
    {
        var vars = Microsoft.FSharp.Collections.ListModule.OfSeq(new[] { Tuple.Create("ff", new[] { 1, 2 }, new byte[] { 1, 2 }) });
        var bytes = MatFile.encode(false, vars);
        // The array flags' class byte (offset 128 + 8 tag + 8 flags tag) becomes 4 = char.
        Assert.Equal(9, bytes[144]);
        bytes[144] = 4;
        var e = Assert.Throws<DataFormatException>(() => Vae.Core.Data.FreyFace.read(Write(TestEnvironment.NewTempDirectory(), "char.mat", bytes)));
        Assert.Contains("class char", e.Message);
    }

    [Fact]
    public void TruncatedFreyFaceFileIsAFormatError()
    {
        var path = Vae.Core.Data.FreyFace.fetch(TestEnvironment.CachedData.ToCore());
        var bytes = File.ReadAllBytes(path)[..50000];
        string cut = Write(TestEnvironment.NewTempDirectory(), "frey_cut.mat", bytes);
        var e = Assert.Throws<DataFormatException>(() => Vae.Core.Data.FreyFace.read(cut));
        Assert.Equal(cut, e.File);
        Assert.Contains("truncated", e.Message);
    }

    [Fact]
    public void MatFileWithAWrongHeaderIsNamed()
    {
        var e = Assert.Throws<DataFormatException>(() => MatFile.readVariable(Write(TestEnvironment.NewTempDirectory(), "x.mat", new byte[200]), "ff"));
        Assert.Equal("header text", e.Field);
    }

    [Fact]
    public void NpyUInt8AndFloat32RoundTrip()
    {
        var images = new Images(3, 2, 2, Enumerable.Range(0, 12).Select(i => i / 11f).ToArray());
        string dir = TestEnvironment.NewTempDirectory();
        var f = Npy.read(Write(dir, "f.npy", Npy.encode(false, images)));
        Assert.Equal(images.Pixels, f.Pixels);
        var u = Npy.read(Write(dir, "u.npy", Npy.encode(true, images)));
        Assert.Equal(images.Pixels.Select(v => MathF.Round(v * 255) / 255f), u.Pixels);
        Assert.Equal((3, 2, 2), (u.Count, u.Height, u.Width));
    }

    [Fact]
    public void FilesWrittenByNumpySaveParseToTheirValues()
    {
        // Bytes written by NumPy 1.24's numpy.save, not by this project: np.array([[[0, 128], [255, 1]], [[2, 3], [4, 5]]],
        // dtype=np.uint8), and np.array([[0, 0.25, 1], [0.5, 0.125, 0.75]], dtype='<f4').
        var u8 = Convert.FromBase64String("k05VTVBZAQB2AHsnZGVzY3InOiAnfHUxJywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDIsIDIsIDIpLCB9ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAgP8BAgMEBQ==");
        var f4 = Convert.FromBase64String("k05VTVBZAQB2AHsnZGVzY3InOiAnPGY0JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDIsIDMpLCB9ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAAAAAACAPgAAgD8AAAA/AAAAPgAAQD8=");
        var a = Npy.parse("numpy-u8.npy", u8);
        Assert.Equal((2, 2, 2), (a.Count, a.Height, a.Width));
        Assert.Equal(new[] { 0f, 128 / 255f, 1f, 1 / 255f, 2 / 255f, 3 / 255f, 4 / 255f, 5 / 255f }, a.Pixels);
        var b = Npy.parse("numpy-f4.npy", f4);
        Assert.Equal((2, 1, 3), (b.Count, b.Height, b.Width));
        Assert.Equal(new[] { 0f, 0.25f, 1f, 0.5f, 0.125f, 0.75f }, b.Pixels);
    }

    [Fact]
    public void NpyOutsideTheUnitIntervalIsAClearErrorForABernoulliDecoder()
    {
        var images = new Images(2, 1, 2, [0.5f, 1.5f, 0.2f, 0.1f]);
        string path = Write(TestEnvironment.NewTempDirectory(), "big.npy", Npy.encode(false, images));
        var e = Assert.Throws<DataFormatException>(() => Vae.Core.Data.ImagesModule.requireUnitInterval(path, Npy.read(path)));
        Assert.Contains("[0, 1]", e.Message);
        Assert.Contains("image 0, pixel 1", e.Message);
    }

    [Fact]
    public void NpyOfAnUnsupportedDtypeIsNamed()
    {
        var bytes = Npy.encode(false, new Images(1, 1, 2, [0f, 1f]));
        var text = System.Text.Encoding.Latin1.GetString(bytes).Replace("<f4", "<f2");
        var e = Assert.Throws<DataFormatException>(() => Npy.read(Write(TestEnvironment.NewTempDirectory(), "d.npy", System.Text.Encoding.Latin1.GetBytes(text))));
        Assert.Equal("header 'descr'", e.Field);
        Assert.Contains("'<f8'", e.Message);
    }

    [Fact]
    public void NumpysDefaultFloat64IsReadAsFloat32AndNonFiniteValuesAreNamedByRowAndColumn()
    {
        // numpy.save (NumPy 1.24) of np.array([[0, 0.25, 1e3], [-2.5, 0.125, 0.75]]), of [[1, 2], [3, nan]] and of
        // [[1, 1e300]], all float64 (numpy's default dtype).
        var f8 = Npy.parse("numpy-f8.npy", Convert.FromBase64String("k05VTVBZAQB2AHsnZGVzY3InOiAnPGY4JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDIsIDMpLCB9ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAAAAAAAAAAAAAAAAANA/AAAAAABAj0AAAAAAAAAEwAAAAAAAAMA/AAAAAAAA6D8="));
        Assert.Equal((2, 1, 3), (f8.Count, f8.Height, f8.Width));
        Assert.Equal(new[] { 0f, 0.25f, 1000f, -2.5f, 0.125f, 0.75f }, f8.Pixels);
        var nan = Assert.Throws<DataFormatException>(() => Npy.parse("nan.npy", Convert.FromBase64String("k05VTVBZAQB2AHsnZGVzY3InOiAnPGY4JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDIsIDIpLCB9ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAAAAAADwPwAAAAAAAABAAAAAAAAACEAAAAAAAAD4fw==")));
        Assert.Equal("row 1, column 1", nan.Field);
        var huge = Assert.Throws<DataFormatException>(() => Npy.parse("huge.npy", Convert.FromBase64String("k05VTVBZAQB2AHsnZGVzY3InOiAnPGY4JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDEsIDIpLCB9ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAAAAAADwP5x1AIg85Dd+")));
        Assert.Equal("row 0, column 1", huge.Field);
        Assert.Contains("1e+300 (float64; float32 holds at most 3.4e38)", huge.Message);
    }

    [Fact]
    public void IdxDirectoryLoadsAUsersOwnData()
    {
        string dir = TestEnvironment.NewTempDirectory();
        Write(dir, "train-images-idx3-ubyte", Idx.encode([2, 2, 2], [0, 255, 0, 255, 1, 2, 3, 4]));
        Write(dir, "t10k-images-idx3-ubyte", Idx.encode([1, 2, 2], [9, 9, 9, 9]));
        Write(dir, "t10k-labels-idx1-ubyte", Idx.encode([2], [1, 2]));
        var e = Assert.Throws<DataFormatException>(() => DataSets.FromIdxDirectory(dir));
        Assert.Equal("label count", e.Field);
        File.Delete(Path.Combine(dir, "t10k-labels-idx1-ubyte"));
        var data = DataSets.FromIdxDirectory(dir);
        Assert.Equal((2, 1), (data.Train.Count, data.Test.Count));
        Assert.Null(data.TestLabels);
        Assert.Throws<FileNotFoundException>(() => DataSets.FromIdxDirectory(TestEnvironment.NewTempDirectory()));
    }
}
