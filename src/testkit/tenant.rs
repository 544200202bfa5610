pub struct FakeTenant;
