pub struct FakeHost;
